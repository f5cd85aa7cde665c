"""The map: the embedded Leaflet page (``web/``) and its view, the map panel, the density
overlay and its colours, and the offline basemap."""
