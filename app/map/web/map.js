// The map page of LocDiff Studio: one page, loaded once; app/map_view.py pushes state into it
// through window.locdiff.* (runJavaScript) and hears back through the Qt WebChannel "bridge".
// Layers, bottom to top: offline basemap (always there; rivers from zoom 3), a map pack or
// online tiles (hidden where they fail), density overlay, place names (map_overlays.js),
// candidates and samples, photo pins (clustered; the selected ones never are).
"use strict";

(function () {
  const SEA = "#b9d3e4";
  const BASEMAP_STYLE = {
    land: { stroke: false, fill: true, fillColor: "#f2eee3", fillOpacity: 1 },
    lake: { stroke: false, fill: true, fillColor: SEA, fillOpacity: 1 },
    coast: { stroke: true, color: "#6f7a84", weight: 0.8, fill: false },
    border: { stroke: true, color: "#9a8f95", weight: 0.7, dashArray: "3 2", fill: false },
    graticule: { stroke: true, color: "#ffffff", weight: 0.6, opacity: 0.7, fill: false },
    river: { stroke: true, color: "#7fa9c9", weight: 1, opacity: 0.9, fill: false },
  };
  const RIVERS_FROM_ZOOM = 3; // at world scale the rivers are a tangle
  const CLUSTER_RADIUS_PX = 36; // pins closer than this on screen gather into one numbered disc
  const CLUSTER_OFF_ZOOM = 17; // closer than this every pin shows on its own
  const ONE_POINT_ZOOM = 10; // fitting a single photo: close enough to see the town
  const MANY_POINTS_MAX_ZOOM = 16;
  const OFFLINE_MAX_ZOOM = 5; // without tiles only the ~25 km basemap shows: no closer than this
  const TRACK_OFFLINE_MAX_ZOOM = 12;
  const KEEP_ZOOM_SLACK = 3; // a selection on screen in a view this close to the fit stays put
  const OVERVIEW_ZOOM = 3; // ... unless the view is a continent or more: then it is fitted
  const OFFLINE_AFTER_MS = 10000; // a tile error counts as "offline" unless a tile loaded this recently

  const map = L.map("map", {
    center: [20, 0],
    zoom: 2,
    minZoom: 1,
    maxZoom: 19,
    worldCopyJump: false,
    zoomSnap: 0.25,
  });
  map.attributionControl.setPrefix("Leaflet");

  function makePane(name, zIndex) {
    const pane = map.createPane(name);
    pane.style.zIndex = String(zIndex);
    pane.style.pointerEvents = "none";
    return pane;
  }
  makePane("basemap", 150); // under Leaflet's tile pane (200)
  makePane("density", 350); // over the tiles, under vectors (400) and pins (600)

  const basemapRenderer = L.canvas({ pane: "basemap", padding: 0.5 });
  const sampleRenderer = L.canvas({ padding: 0.5 });
  let basemapLayer = null;
  let riverLayer = null;
  let basemapFeatures = 0;
  let riverFeatures = 0;
  let pack = null; // {name, kind, url, ...} of the open map pack, its layer in packLayer
  let packLayer = null;
  let tileLayer = null;
  let tilesState = "offline";
  let lastTileLoad = 0;
  let tileErrors = 0; // since the tile URL was set
  let tileUrl = null;
  let tileAttribution = "";
  let packTiles = 0; // raster pack tiles loaded and failed (outside the pack: failed)
  let packErrors = 0;
  const UNREACHABLE_AFTER_ERRORS = 4; // failed tiles, none loaded: the tile server is unreachable

  const trackLayer = L.layerGroup().addTo(map);
  const linkLayer = L.layerGroup().addTo(map);
  const searchLayer = L.layerGroup().addTo(map);
  // A cluster: a stack of pins with its count on a badge at the upper right, so that a
  // selected pin drawn over the cluster's centre leaves the count readable.
  function clusterIcon(cluster) {
    const count = cluster.getChildCount();
    const size = count < 10 ? 26 : count < 100 ? 30 : 36;
    return L.divIcon({
      html: '<span class="cluster-count">' + count + "</span>",
      className: "pin-cluster",
      iconSize: [size, size],
    });
  }
  const photoLayer = L.markerClusterGroup({
    maxClusterRadius: CLUSTER_RADIUS_PX,
    disableClusteringAtZoom: CLUSTER_OFF_ZOOM,
    showCoverageOnHover: false,
    spiderfyOnMaxZoom: true,
    chunkedLoading: true,
    iconCreateFunction: clusterIcon,
  }).addTo(map);
  const selectedLayer = L.layerGroup().addTo(map); // selected pins, outside the clusters
  const candidateLayer = L.layerGroup().addTo(map);
  const sampleLayer = L.layerGroup().addTo(map);
  const photos = new Map(); // key -> {marker, lat, lon, kind, label}
  const tracks = new Map(); // id -> {label, visible, points, line}
  let searchMarker = null;
  let linkPoints = 0;
  let selection = [];
  let candidates = [];
  let sampleCount = 0;
  let samplesVisible = true;
  let densityLayer = null;
  let densityOpacity = 0.6;
  let bridge = null;

  function wrapLon(lon) {
    return lon >= -180 && lon <= 180 ? lon : ((((lon + 180) % 360) + 360) % 360) - 180;
  }

  function setTilesState(state) {
    if (state === tilesState) return;
    tilesState = state;
    if (bridge) bridge.tilesChanged(state);
    if (api.onTilesChanged) api.onTilesChanged(state, tileUrl);
  }

  const icons = {};
  function iconFor(kind, selected) {
    const id = kind + (selected ? ":sel" : "");
    if (!icons[id]) {
      const size = selected ? 20 : 15;
      icons[id] = L.divIcon({
        className: "pin pin-" + kind + (selected ? " pin-selected" : ""),
        iconSize: [size, size],
        iconAnchor: [size / 2, size / 2],
        tooltipAnchor: [size / 2, 0],
      });
    }
    return icons[id];
  }

  // A pin's style, and its layer: the selected pins stand alone, the others may cluster.
  function styleMarker(key) {
    const p = photos.get(key);
    const selected = selection.includes(key);
    p.marker.setIcon(iconFor(p.kind, selected));
    p.marker.setZIndexOffset(selected ? 1000 : 0);
    const layer = selected ? selectedLayer : photoLayer;
    const other = selected ? photoLayer : selectedLayer;
    if (other.hasLayer(p.marker)) other.removeLayer(p.marker);
    if (!layer.hasLayer(p.marker)) layer.addLayer(p.marker);
  }

  function newPhotoMarker(key, p) {
    const marker = L.marker([p.lat, p.lon], {
      icon: iconFor(p.kind, false),
      draggable: true,
      autoPan: true,
      keyboard: false,
      riseOnHover: true,
    });
    marker.bindTooltip(p.label, { direction: "top" });
    marker.on("click", function () {
      if (bridge) bridge.pinClicked(key);
    });
    marker.on("dragend", function () {
      const ll = marker.getLatLng();
      const entry = photos.get(key);
      entry.lat = ll.lat;
      entry.lon = wrapLon(ll.lng);
      if (bridge) bridge.pinMoved(key, entry.lat, entry.lon);
    });
    return marker;
  }

  // offlineZoom: how close to go without tiles (the basemap alone is coarse; with a track shown,
  // its line and the pins on it still read well closer in).
  // keepIfShown: leave the view as it is when every point is on screen and the view is already
  // about as close as fitting would go (the user's own zoom is kept).
  function fitPoints(points, offlineZoom, keepIfShown) {
    if (!points.length) return;
    const bounds = L.latLngBounds(points.map((p) => L.latLng(p[0], p[1])));
    let maxZoom = points.length === 1 ? ONE_POINT_ZOOM : MANY_POINTS_MAX_ZOOM;
    const offline = offlineZoom || (trackLayer.getLayers().length ? TRACK_OFFLINE_MAX_ZOOM : OFFLINE_MAX_ZOOM);
    if (tilesState === "pack" && pack) maxZoom = Math.min(maxZoom, Math.max(pack.maxZoom + 2, offline));
    else if (tilesState !== "online") maxZoom = Math.min(maxZoom, offline);
    if (keepIfShown) {
      const shown = map.getBounds().pad(-0.05).contains(bounds);
      const target = Math.min(map.getBoundsZoom(bounds, false, L.point(96, 96)), maxZoom);
      if (shown && map.getZoom() > OVERVIEW_ZOOM && map.getZoom() >= target - KEEP_ZOOM_SLACK) return;
    }
    map.fitBounds(bounds, { padding: [48, 48], maxZoom: maxZoom, animate: false });
  }

  function showRivers() {
    if (!riverLayer) return;
    const wanted = map.getZoom() >= RIVERS_FROM_ZOOM;
    if (wanted && !map.hasLayer(riverLayer)) riverLayer.addTo(map);
    if (!wanted && map.hasLayer(riverLayer)) map.removeLayer(riverLayer);
  }
  map.on("zoomend", showRivers);

  function outlineLayer(features, attribution) {
    return L.geoJSON({ type: "FeatureCollection", features: features }, {
      pane: "basemap",
      renderer: basemapRenderer,
      interactive: false,
      attribution: attribution,
      style: (feature) => BASEMAP_STYLE[feature.properties.layer] || BASEMAP_STYLE.border,
    });
  }

  const api = {
    setBasemap(geojson, attribution) {
      if (basemapLayer) map.removeLayer(basemapLayer);
      if (riverLayer) map.removeLayer(riverLayer);
      // Rivers draw over the land and under the coasts, borders and graticule.
      const isRiver = (f) => f.properties.layer === "river";
      const others = geojson.features.filter((f) => !isRiver(f));
      const firstLine = others.findIndex((f) => f.properties.layer !== "land" && f.properties.layer !== "lake");
      const split = firstLine < 0 ? others.length : firstLine;
      const rivers = geojson.features.filter(isRiver);
      basemapLayer = L.layerGroup([
        outlineLayer(others.slice(0, split), attribution),
        outlineLayer(others.slice(split)),
      ]).addTo(map);
      riverLayer = rivers.length ? outlineLayer(rivers) : null;
      basemapFeatures = others.length;
      riverFeatures = rivers.reduce((n, f) => n + (f.geometry.type === "MultiLineString" ? f.geometry.coordinates.length : 1), 0);
      showRivers();
    },

    // The online tiles. States: "online" once a tile loads; "unreachable" when tiles fail and
    // none has loaded since the URL was set; "offline" with no URL, or when tiles that loaded
    // before stop loading. An open map pack takes the tiles' place ("pack").
    setTileUrl(url, attribution) {
      if (tileLayer) map.removeLayer(tileLayer);
      tileLayer = null;
      tileUrl = url || null;
      tileAttribution = attribution;
      lastTileLoad = 0;
      tileErrors = 0;
      if (pack) return;
      setTilesState("offline");
      if (!url) return;
      let loaded = false;
      tileLayer = L.tileLayer(url, { maxZoom: 19, attribution: attribution, crossOrigin: false });
      tileLayer.on("tileload", function () {
        loaded = true;
        lastTileLoad = Date.now();
        setTilesState("online");
      });
      tileLayer.on("tileerror", function () {
        // A failed tile stays hidden (Leaflet shows only loaded tiles): the basemap shows through.
        tileErrors += 1;
        if (!loaded && tileErrors >= UNREACHABLE_AFTER_ERRORS) setTilesState("unreachable");
        else if (loaded && Date.now() - lastTileLoad > OFFLINE_AFTER_MS) setTilesState("offline");
      });
      tileLayer.addTo(map);
    },

    // An offline map pack as the basemap, served by the app on 127.0.0.1: spec is
    // {name, kind: "raster" | "vector", url: ".../{z}/{x}/{y}.ext", attribution, minZoom,
    // maxZoom, bounds: [[south, west], [north, east]]}, or null to go back to the tiles.
    // Raster packs are Leaflet tiles; vector packs (the Protomaps basemap schema) are drawn by
    // protomaps-leaflet. Beyond the pack's zooms its deepest tiles are magnified.
    setPack(spec) {
      if (packLayer) map.removeLayer(packLayer);
      packLayer = null;
      pack = spec;
      packTiles = 0;
      packErrors = 0;
      if (!spec) {
        api.setTileUrl(tileUrl, tileAttribution);
        return;
      }
      if (tileLayer) map.removeLayer(tileLayer);
      tileLayer = null;
      const bounds = spec.bounds ? L.latLngBounds(spec.bounds) : undefined;
      const options = {
        maxZoom: 19,
        minNativeZoom: spec.minZoom,
        maxNativeZoom: spec.maxZoom,
        bounds: bounds,
        attribution: spec.attribution,
      };
      if (spec.kind === "vector") {
        if (typeof protomapsL === "undefined") throw new Error("protomaps-leaflet is not loaded");
        packLayer = protomapsL.leafletLayer(Object.assign(options, {
          url: spec.url,
          flavor: "light",
          lang: "en",
          maxDataZoom: spec.maxZoom,
        }));
        packLayer.backgroundColor = undefined; // tiles the pack lacks let the basemap show
      } else {
        packLayer = L.tileLayer(spec.url, options);
        packLayer.on("tileload", () => { packTiles += 1; });
        packLayer.on("tileerror", () => { packErrors += 1; });
      }
      packLayer.addTo(map);
      setTilesState("pack");
      if (bounds && !map.getBounds().intersects(bounds)) map.fitBounds(bounds, { animate: false });
    },

    // rows: [[key, lat, lon, kind, label], ...]; replaces all photo pins, keeping the markers
    // of photos still there (so a pin being looked at does not flicker).
    setPhotos(rows) {
      const keep = new Set();
      const added = [];
      for (const [key, lat, lon, kind, label] of rows) {
        keep.add(key);
        const old = photos.get(key);
        if (old) {
          old.lat = lat;
          old.lon = lon;
          old.label = label;
          old.marker.setLatLng([lat, lon]);
          old.marker.setTooltipContent(label);
          if (old.kind !== kind) {
            old.kind = kind;
            styleMarker(key);
          }
        } else {
          const entry = { lat: lat, lon: lon, kind: kind, label: label };
          entry.marker = newPhotoMarker(key, entry);
          photos.set(key, entry);
          if (selection.includes(key)) styleMarker(key);
          else added.push(entry.marker);
        }
      }
      for (const [key, entry] of photos) {
        if (!keep.has(key)) {
          photoLayer.removeLayer(entry.marker);
          selectedLayer.removeLayer(entry.marker);
          photos.delete(key);
        }
      }
      if (added.length) photoLayer.addLayers(added);
      photoLayer.refreshClusters();
    },

    setSelection(keys, fit) {
      const before = selection;
      selection = keys.slice();
      for (const key of new Set(before.concat(selection))) {
        if (photos.has(key)) styleMarker(key);
      }
      if (fit) {
        fitPoints(selection.filter((k) => photos.has(k)).map((k) => [photos.get(k).lat, photos.get(k).lon]), null, true);
      }
    },

    // cands: [[lat, lon, probability, label], ...]; samples: [[lat, lon], ...]
    setCandidates(cands, samples) {
      candidateLayer.clearLayers();
      sampleLayer.clearLayers();
      candidates = cands.map(([lat, lon, probability, label]) => ({ lat, lon, probability, label }));
      const largestFirst = candidates.slice().sort((a, b) => b.probability - a.probability);
      for (const c of largestFirst) {
        const percent = Math.round(100 * c.probability);
        const rank = candidates.indexOf(c);
        L.circleMarker([c.lat, c.lon], {
          radius: 5 + 22 * Math.sqrt(Math.max(0, Math.min(1, c.probability))),
          color: "#ffffff",
          weight: 1.5,
          fillColor: "#7b2cbf",
          fillOpacity: 0.45,
        })
          .bindTooltip((c.label ? c.label + " \u2014 " : "") + percent + "%", { className: "candidate-tip" })
          .on("click", function () {
            if (bridge) bridge.candidateClicked(rank);
          })
          .addTo(candidateLayer);
      }
      for (const [lat, lon] of samples) {
        // White with a dark rim: readable on the land, the sea and the density's dark and
        // bright ends alike.
        L.circleMarker([lat, lon], {
          renderer: sampleRenderer,
          radius: 2.5,
          color: "#1b1b1b",
          weight: 1,
          opacity: 0.8,
          fillColor: "#ffffff",
          fillOpacity: 0.9,
          interactive: false,
        }).addTo(sampleLayer);
      }
      sampleCount = samples.length;
    },

    setSamplesVisible(visible) {
      samplesVisible = !!visible;
      if (samplesVisible && !map.hasLayer(sampleLayer)) sampleLayer.addTo(map);
      if (!samplesVisible && map.hasLayer(sampleLayer)) map.removeLayer(sampleLayer);
    },

    // url: a PNG data URL already in Web Mercator rows (app/density_colors.py), or null.
    // Drawn on the world and on its copies east and west, so a density across the
    // antimeridian (the Pacific) is not cut where the map shows the next copy.
    setDensity(url, bounds) {
      if (densityLayer) map.removeLayer(densityLayer);
      densityLayer = null;
      if (!url) return;
      const [[south, west], [north, east]] = bounds;
      densityLayer = L.layerGroup(
        [-360, 0, 360].map((shift) =>
          L.imageOverlay(url, [[south, west + shift], [north, east + shift]], {
            pane: "density",
            className: "density-layer",
            opacity: densityOpacity,
            interactive: false,
          })
        )
      ).addTo(map);
    },

    setDensityOpacity(opacity) {
      densityOpacity = opacity;
      if (densityLayer) densityLayer.eachLayer((layer) => layer.setOpacity(opacity));
    },

    fitTo(points, offlineZoom) {
      fitPoints(points, offlineZoom);
    },

    // rows: [[id, label, colour, visible, [[[lat, lon], ...] per segment]], ...]; replaces all
    // tracks. A click on a line asks the window (bridge.trackClicked) with the point clicked.
    setTracks(rows) {
      trackLayer.clearLayers();
      tracks.clear();
      for (const [id, label, colour, visible, segments] of rows) {
        const line = L.polyline(segments, { color: colour, weight: 3, opacity: 0.85 });
        line.bindTooltip(label, { sticky: true });
        line.on("click contextmenu", function (e) {
          L.DomEvent.stop(e);
          if (bridge) bridge.trackClicked(id, e.latlng.lat, wrapLon(e.latlng.lng), e.containerPoint.x, e.containerPoint.y);
        });
        const points = segments.reduce((n, s) => n + s.length, 0);
        tracks.set(id, { label: label, visible: visible, points: points, line: line });
        if (visible) trackLayer.addLayer(line);
      }
    },

    // points: [[lat, lon], [lat, lon]] from the file's GPS to the best guess (dashed), or [].
    setLink(points) {
      linkLayer.clearLayers();
      linkPoints = points.length;
      if (points.length === 2) {
        L.polyline(points, { color: "#1f6fd1", weight: 2, dashArray: "6 4", interactive: false }).addTo(linkLayer);
      }
    },

    // A found place: a marker with its name, or nothing (null).
    setSearchMarker(lat, lon, label) {
      searchLayer.clearLayers();
      searchMarker = null;
      if (lat === null) return;
      searchMarker = { lat: lat, lon: lon, label: label };
      L.circleMarker([lat, lon], { radius: 9, color: "#212529", weight: 2, fillColor: "#ffffff", fillOpacity: 0.9 })
        .bindTooltip(label, { permanent: true, direction: "right", className: "search-tip" })
        .on("contextmenu", function (e) {
          L.DomEvent.stop(e);
          if (bridge) bridge.contextMenu(lat, lon, e.containerPoint.x, e.containerPoint.y);
        })
        .addTo(searchLayer);
    },

    fitTracks(ids) {
      const points = [];
      for (const id of ids) {
        const t = tracks.get(id);
        if (t) for (const seg of t.line.getLatLngs()) for (const ll of seg) points.push([ll.lat, ll.lng]);
      }
      fitPoints(points, TRACK_OFFLINE_MAX_ZOOM);
    },

    // For tests and the screenshot: where a coordinate is in the page, in CSS pixels.
    containerPoint(lat, lon) {
      const p = map.latLngToContainerPoint([lat, lon]);
      return [p.x, p.y];
    },

    photoMarker(key) {
      const entry = photos.get(key);
      return entry ? entry.marker : null;
    },

    map: map,
  };

  map.on("contextmenu", function (e) {
    if (bridge) bridge.contextMenu(e.latlng.lat, wrapLon(e.latlng.lng), e.containerPoint.x, e.containerPoint.y);
  });

  // The clusters on screen, largest first: [{count, lat, lon}] (the page state's "clusters").
  function visibleClusters() {
    const shown = [];
    const view = map.getBounds();
    photoLayer.eachLayer(function (marker) {
      const parent = photoLayer.getVisibleParent(marker);
      if (parent && parent !== marker && view.contains(parent.getLatLng()) && !shown.includes(parent)) {
        shown.push(parent);
      }
    });
    return shown
      .map((c) => ({ count: c.getChildCount(), lat: c.getLatLng().lat, lon: c.getLatLng().lng }))
      .sort((a, b) => b.count - a.count);
  }

  // The window picks the place names of the view (app/map/place_labels.py) when it moves.
  function reportView() {
    const b = map.getBounds();
    if (bridge) bridge.viewChanged(b.getSouth(), b.getWest(), b.getNorth(), b.getEast(), map.getZoom());
  }
  map.on("moveend", reportView);

  window.locdiff = api;
  window.locdiffState = function () {
    const center = map.getCenter();
    return {
      photos: Array.from(photos, ([key, p]) => ({ key: key, lat: p.lat, lon: p.lon, kind: p.kind })),
      selection: selection.slice(),
      candidates: candidates.slice(),
      tracks: Array.from(tracks, ([id, t]) => ({ id: id, label: t.label, visible: t.visible, points: t.points })),
      search: searchMarker,
      link: linkPoints,
      samples: sampleCount,
      samplesVisible: samplesVisible,
      density: densityLayer !== null,
      densityOpacity: densityOpacity,
      tiles: tilesState,
      tileErrors: tileErrors,
      pack: pack ? { name: pack.name, kind: pack.kind, tiles: packTiles, errors: packErrors } : null,
      rivers: riverFeatures,
      riversShown: riverLayer !== null && map.hasLayer(riverLayer),
      clusters: visibleClusters(),
      basemapFeatures: basemapFeatures,
      view: { lat: center.lat, lon: center.lng, zoom: map.getZoom() },
    };
  };

  if (typeof qt !== "undefined" && qt.webChannelTransport) {
    new QWebChannel(qt.webChannelTransport, function (channel) {
      bridge = channel.objects.bridge;
      bridge.pageLoaded();
      reportView();
    });
  }
})();
