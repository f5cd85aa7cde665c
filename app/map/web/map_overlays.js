// What the map page draws over the map for reading it (loaded after map.js, which it extends):
// the scale bar, place names chosen by the window (app/map/place_labels.py), the density
// overlay's colour legend, and a one-time notice when the tile server cannot be reached.
"use strict";

(function () {
  const api = window.locdiff;
  const map = api.map;
  const pageState = window.locdiffState;

  L.control.scale({ position: "bottomleft", maxWidth: 140, metric: true, imperial: true }).addTo(map);

  // ---- place names -------------------------------------------------------------------
  const labelPane = map.createPane("labels");
  labelPane.style.zIndex = "450"; // over the density overlay (350), under the pins (600)
  labelPane.style.pointerEvents = "none";
  const labelLayer = L.layerGroup().addTo(map);
  let labelCount = 0;
  let labelNames = [];

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
  }

  // rows: [[lat, lon, name, sizeClass], ...], largest first; replaces the labels.
  api.setLabels = function (rows) {
    labelLayer.clearLayers();
    for (const [lat, lon, name, cls] of rows) {
      L.marker([lat, lon], {
        pane: "labels",
        interactive: false,
        keyboard: false,
        icon: L.divIcon({
          className: "place-label place-label-" + cls,
          html: '<span class="place-dot"></span><span class="place-name">' + escapeHtml(name) + "</span>",
          iconSize: null,
          iconAnchor: [4, 8],
        }),
      }).addTo(labelLayer);
    }
    labelCount = rows.length;
    labelNames = rows.map((r) => r[2]);
  };

  // ---- the density legend ------------------------------------------------------------
  // legend: {title, stops: ["#rrggbb", ...] bottom to top, ticks: [[position 0..1, text]],
  // note} or null to hide it.
  const Legend = L.Control.extend({
    options: { position: "bottomright" },
    onAdd: function () {
      this._div = L.DomUtil.create("div", "density-legend");
      L.DomEvent.disableClickPropagation(this._div);
      return this._div;
    },
  });
  const legendControl = new Legend();
  let legend = null;

  api.setLegend = function (spec) {
    legend = spec;
    if (!spec) {
      if (legendControl._map) legendControl.remove();
      return;
    }
    if (!legendControl._map) legendControl.addTo(map);
    const gradient = "linear-gradient(to top, " + spec.stops.join(", ") + ")";
    const ticks = spec.ticks
      .map(([at, text]) => '<span class="legend-tick" style="bottom:' + (100 * at).toFixed(1) + '%">' + escapeHtml(text) + "</span>")
      .join("");
    legendControl._div.innerHTML =
      '<div class="legend-title">' + escapeHtml(spec.title) + "</div>" +
      '<div class="legend-body"><div class="legend-bar" style="background:' + gradient + '"></div>' +
      '<div class="legend-ticks">' + ticks + "</div></div>" +
      (spec.note ? '<div class="legend-note">' + escapeHtml(spec.note) + "</div>" : "");
  };

  // ---- notices -----------------------------------------------------------------------
  const Notice = L.Control.extend({
    options: { position: "topright" },
    onAdd: function () {
      const div = L.DomUtil.create("div", "map-notice");
      L.DomEvent.disableClickPropagation(div);
      return div;
    },
  });
  const noticeControl = new Notice();
  let notice = null;
  const told = new Set(); // tile URLs already said to be unreachable

  api.showNotice = function (text) {
    notice = text || null;
    if (!notice) {
      if (noticeControl._map) noticeControl.remove();
      return;
    }
    if (!noticeControl._map) noticeControl.addTo(map);
    const div = noticeControl.getContainer();
    div.innerHTML = '<span class="notice-text"></span><a class="notice-close" href="#" title="Close">\u00d7</a>';
    div.firstChild.textContent = notice;
    div.lastChild.addEventListener("click", function (e) {
      e.preventDefault();
      api.showNotice(null);
    });
  };

  api.onTilesChanged = function (state, url) {
    if (state === "unreachable" && url && !told.has(url)) {
      told.add(url);
      let host = url;
      try {
        host = new URL(url.replace(/\{s\}/g, "a")).host;
      } catch (e) { /* keep the template as it is */ }
      api.showNotice("The map tile server " + host + " cannot be reached: showing the offline map.");
    } else if (state === "online" || state === "pack") {
      if (notice && notice.startsWith("The map tile server")) api.showNotice(null);
    }
  };

  window.locdiffState = function () {
    const state = pageState();
    state.labels = labelCount;
    state.labelNames = labelNames.slice();
    state.legend = legend ? { title: legend.title, ticks: legend.ticks.map((t) => t[1]), stops: legend.stops.length } : null;
    state.notice = notice;
    state.scaleBar = document.querySelector(".leaflet-control-scale") !== null;
    return state;
  };
})();
