// SkyTwin web map: deck.gl (vendored) over the service's own HTTP API and event stream.
// No network beyond this server; the token lives in sessionStorage and travels only in
// the Authorization header. window.skytwin exposes the page's state for tests.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const S = window.skytwin = {
    ready: false, firstRenderMs: null, buildings: 0, zones: 0, zonesActive: 0,
    flights: 0, drones: 0, events: [], flightIds: [], zoneIds: [], highlighted: [],
    lastSequence: 0, drawnUnixMs: {}, layerUnixMs: {}, role: null, operatorId: null, frameMs: [], error: null,
  };
  let token = sessionStorage.getItem("skytwin-token") || "";
  let sceneDeck = null, liveDeck = null, viewState = null, twin = null, flights = new Map(), zones = new Map();
  let liveDrones = new Map(), derived = new Map(), risk = null, riskVer = 0;
  let clockOffsetS = 0, tSel = null, live = true, highlight = new Set();
  let draft = { mode: null, pts: [] }, clickMark = null, stream = null;
  let sceneDirty = true, liveDirty = true, zonesVer = 0, flightsVer = 0;
  const cache = {}, pendingDrawn = new Set();
  const DRONE_HZ = 20;
  // a flight about to depart (or just landed) needs one more update to appear/disappear
  function dronesDue() {
    const t = timeS();
    for (const f of cache.flist || []) if (f.depart_unix_s <= t + 1 && f.arrive_unix_s >= t - 1) return 1;
    return 0;
  }

  // ------------------------------------------------------------------ HTTP
  async function api(path, opts) {
    const o = Object.assign({ headers: {} }, opts || {});
    o.headers = Object.assign({ Authorization: "Bearer " + token }, o.headers);
    const r = await fetch(path, o);
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = new Error((body.error && body.error.message) || r.statusText);
      e.status = r.status; e.code = body.error && body.error.code;
      throw e;
    }
    return body;
  }
  const nowS = () => Date.now() / 1000 + clockOffsetS;
  const timeS = () => (live || tSel === null ? nowS() : tSel);

  // ------------------------------------------------------------------ sign-in
  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    start();
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem("skytwin-token");
    location.reload();
  });

  async function start() {
    S.signInMs = performance.now();
    $("signin-error").textContent = "";
    let who;
    try {
      who = await api("/api/session");
    } catch (e) {
      $("signin-error").textContent = "Sign-in failed: " + e.message;
      S.error = e.message;
      return;
    }
    sessionStorage.setItem("skytwin-token", token);
    S.role = who.role; S.operatorId = who.operator_id;
    $("who").textContent = who.name + " (" + who.role + (who.operator_id ? " " + who.operator_id : "") + ")";
    for (const id of ["top", "legend", "side"]) $(id).classList.remove("hidden");
    $("signin").classList.add("hidden");
    if (who.role === "regulator") $("draw").classList.remove("hidden");
    const [tw, st, gr] = await Promise.all([api("/api/twin"), api("/api/state"), api("/api/ground?risk=0")]);
    for (const z of gr.derived) derived.set(z.id, z);
    twin = prepareTwin(tw);
    clockOffsetS = st.now_s - Date.now() / 1000;
    for (const z of st.zones) zones.set(z.id, z);
    for (const f of st.flights) flights.set(f.flight_id, prepareFlight(f));
    S.lastSequence = st.sequence;
    setupTime();
    makeDeck();
    if (twin.lod === "exact") api("/api/twin?lod=rect").then((r) => { twin.motion = prepareBuildings(r.buildings); });
    // the stream replays the last retained changes (the recent-events list), then live
    openStream(Math.max(0, st.sequence - 30));
  }

  // ------------------------------------------------------------------ data
  function heightColour(h) {
    const t = Math.max(0, Math.min(1, h / 60));
    return [Math.round(150 - 90 * t), Math.round(185 - 85 * t), Math.round(215 - 35 * t), 255];
  }
  // Buildings go to deck.gl as binary attributes: one Float64Array of closed rings
  // (counter-clockwise, as the layer's _normalize: false expects), per-vertex colour
  // and elevation, and the start of each ring; no JavaScript object per building.
  function prepareBuildings(b) {
    const rings = b.rings, n = rings.length;
    let nv = 0;
    for (const r of rings) nv += r.length / 2 + 1;
    const pos = new Float64Array(3 * nv), col = new Uint8Array(4 * nv), elev = new Float32Array(nv);
    const starts = new Uint32Array(n), owner = new Int32Array(n);
    let v = 0;
    for (let r = 0; r < n; r++) {
      const ring = rings[r], k = b.ring_building[r], m = ring.length / 2, base = b.base_m[k];
      const unknown = b.unknown[k] === 1, h = b.top_m[k] - base;
      const c = unknown ? [118, 118, 118, 255] : heightColour(b.top_m[k] - b.ground_m[k]);
      let area = 0;   // shoelace: > 0 counter-clockwise
      for (let i = 0; i < m; i++) {
        const j = (i + 1) % m;
        area += ring[2 * i] * ring[2 * j + 1] - ring[2 * j] * ring[2 * i + 1];
      }
      starts[r] = v; owner[r] = k;
      for (let q = 0; q <= m; q++) {
        const i = area >= 0 ? q % m : (m - q % m) % m;
        pos[3 * v] = ring[2 * i]; pos[3 * v + 1] = ring[2 * i + 1]; pos[3 * v + 2] = base;
        col.set(c, 4 * v); elev[v] = h; v++;
      }
    }
    return { src: b, owner: owner, length: n, vertices: nv,
             data: { length: n, startIndices: starts, attributes: {
               getPolygon: { value: pos, size: 3 }, getFillColor: { value: col, size: 4 },
               getElevation: { value: elev, size: 1 } } } };
  }
  S.prepareBuildings = prepareBuildings;   // (benchmarks: level-of-detail A/B)
  function prepareTwin(tw) {
    const b = tw.buildings, bb = b.bounds, gz = tw.ground_min_m;
    return { raw: tw, polys: prepareBuildings(b), count: b.buildings_total, lod: b.lod, bounds: bb,
             detail: null,
             ground: [{ polygon: [[bb[0], bb[1], gz], [bb[2], bb[1], gz], [bb[2], bb[3], gz], [bb[0], bb[3], gz]] }] };
  }
  // level of detail (large twins): blocks in the overview, the district's own
  // buildings once zoomed in (fetched for the view's box after the view settles)
  const DETAIL_ZOOM = 14.5;
  let detailTimer = null, detailSeq = 0;
  function buildingPolys() {
    // while the camera moves (software renderer) an exact twin is drawn as its
    // footprints' rotated rectangles (4 corners each: a fraction of the triangles)
    if (moving && twin.motion && S.motionLod !== false) return twin.motion;
    if (twin.lod === "exact" || viewState.zoom < DETAIL_ZOOM || !twin.detail) return twin.polys;
    return twin.detail.polys;
  }
  // (tests) what the buildings layer holds for building n of the overview payload
  S.buildingInfo = (n) => {
    const P = twin.polys, r = P.owner.indexOf(n);
    if (r < 0) return null;
    const v = P.data.startIndices[r], a = P.data.attributes;
    return { unknown: P.src.unknown[n] === 1, colour: Array.from(a.getFillColor.value.slice(4 * v, 4 * v + 4)),
             h: a.getElevation.value[v] };
  };
  async function loadDetail() {
    if (viewState.zoom < DETAIL_ZOOM) { if (twin.detail) { twin.detail = null; sceneDirty = true; } return; }
    const b = sceneDeck.getViewports()[0].getBounds();
    const d = twin.detail && twin.detail.bbox;
    if (d && b[0] >= d[0] && b[1] >= d[1] && b[2] <= d[2] && b[3] <= d[3]) return;
    const w = b[2] - b[0], h = b[3] - b[1];   // a margin, so small pans need no request
    const box = [b[0] - w / 4, b[1] - h / 4, b[2] + w / 4, b[3] + h / 4];
    const seq = ++detailSeq;
    const p = await api("/api/buildings?bbox=" + box.map((v) => v.toFixed(6)).join(","));
    if (seq !== detailSeq) return;
    twin.detail = { bbox: box, polys: prepareBuildings(p), lod: p.lod };
    S.detail = { lod: p.lod, count: p.count, exact: p.exact };
    sceneDirty = true;
  }
  function prepareFlight(f) {
    f.path = f.wp.map((w) => [w[0], w[1], w[2]]);
    f.colour = opColour(f.operator_id);
    return f;
  }
  function opColour(op) {
    let h = 0;
    for (const c of op || "") h = (h * 31 + c.charCodeAt(0)) >>> 0;
    const palette = [[60, 230, 160], [90, 200, 255], [255, 230, 90], [200, 150, 255], [255, 140, 120]];
    return palette[h % palette.length];
  }
  function dronePosition(f, t) {
    const wp = f.wp;
    if (t < wp[0][3] || t > wp[wp.length - 1][3]) return null;
    let lo = 0, hi = wp.length - 1;
    while (hi - lo > 1) { const m = (lo + hi) >> 1; if (wp[m][3] <= t) lo = m; else hi = m; }
    const a = wp[lo], b = wp[hi], dt = b[3] - a[3], u = dt > 0 ? (t - a[3]) / dt : 0;
    return [a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1]), a[2] + u * (b[2] - a[2])];
  }
  function zoneActive(z, t) {
    if (!z.window) return true;
    const s = z.window[0], e = z.window[1];
    return !((s !== null && t < s) || (e !== null && t > e));
  }
  // live drones (telemetry): the server pushes the newest report of every airborne
  // drone the caller may see; a flight without one is drawn along its approved plan
  function onDrones(d) {
    const m = new Map();
    for (let k = 0; k < d.flight_ids.length; k++) {
      m.set(d.flight_ids[k], { id: d.flight_ids[k], op: d.operator_ids[k], state: d.states[k], t: d.t_s[k],
                               p: [d.pos[3 * k], d.pos[3 * k + 1], d.pos[3 * k + 2]] });
    }
    liveDrones = m;
    S.liveDrones = Object.fromEntries([...m.values()].map((x) => [x.id, { state: x.state, pos: x.p, t: x.t }]));
    S.liveDronesUnixMs = Date.now();
    liveDirty = true;
  }
  const STATE_COLOUR = { activated: [40, 220, 120, 255], nonconforming: [255, 200, 0, 255],
                         contingent: [255, 40, 40, 255] };

  // ------------------------------------------------------------------ time
  function setupTime() {
    const now = Math.floor(nowS());
    const el = $("time");
    el.min = String(now - 3600); el.max = String(now + 6 * 3600); el.value = String(now);
    el.addEventListener("input", () => { live = false; $("live").checked = false; tSel = Number(el.value); sceneDirty = liveDirty = true; });
    $("live").addEventListener("change", () => { live = $("live").checked; sceneDirty = liveDirty = true; });
  }
  function timeLabel(t) {
    const d = new Date(t * 1000);
    return d.toISOString().slice(11, 19) + " UTC";
  }
  // layer toggles (legend check boxes)
  const show = { buildings: true, zones: true, flights: true, drones: true, derived: true, risk: false };
  for (const el of document.querySelectorAll("#legend input[data-layer]")) {
    el.addEventListener("change", () => {
      show[el.dataset.layer] = el.checked; sceneDirty = liveDirty = true;
      if (el.dataset.layer === "risk" && el.checked && !risk) loadRisk();
    });
  }
  $("risk-period").addEventListener("change", () => { riskVer++; sceneDirty = true; });
  S.show = show;

  // ------------------------------------------------------------------ ground layers
  // the ground-risk layer (population density cells, coloured by SORA band) is loaded
  // when first shown; derived zones (from the city model and rules) come with the state
  const BAND_COLOUR = [null, [60, 160, 80], [140, 190, 70], [220, 210, 60], [240, 150, 50], [230, 80, 40], [180, 20, 60]];
  const CATEGORY_COLOUR = { restricted: [200, 30, 30], authorisation: [160, 60, 220],
                            "altitude-limited": [40, 140, 255], warning: [240, 200, 40] };
  async function loadRisk() {
    const g = await api("/api/ground?risk=1");
    risk = g.risk;
    for (const z of g.derived) derived.set(z.id, z);
    if (risk) {
      const n = risk.n, pos = new Float64Array(n * 5 * 3), starts = new Uint32Array(n), z = twin.raw.ground_min_m + 0.3;
      for (let c = 0; c < n; c++) {
        starts[c] = 5 * c;
        for (let q = 0; q <= 4; q++) {
          const k = 8 * c + 2 * (q % 4);
          pos.set([risk.corners[k], risk.corners[k + 1], z], 3 * (5 * c + q));
        }
      }
      risk.data = { length: n, startIndices: starts, attributes: { getPolygon: { value: pos, size: 3 } } };
      const bands = {};
      for (const b of risk.band_day) bands[b] = (bands[b] || 0) + 1;
      S.risk = { cells: n, cellM: risk.cell_m, bandsDay: bands, source: risk.source };
    }
    riskVer++; sceneDirty = true;
  }
  function riskColours() {
    if (cache.riskVer === riskVer) return cache.riskCol;
    const night = $("risk-period").value === "night", bands = night ? risk.band_night : risk.band_day;
    const col = new Uint8Array(4 * 5 * risk.n);
    for (let c = 0; c < risk.n; c++) {
      const rgb = BAND_COLOUR[bands[c]] || [128, 128, 128];
      for (let q = 0; q < 5; q++) col.set([rgb[0], rgb[1], rgb[2], 130], 4 * (5 * c + q));
    }
    cache.riskVer = riskVer; cache.riskCol = col;
    return col;
  }

  // ------------------------------------------------------------------ layers
  // Two decks, one over the other, sharing the camera: the scene (ground, buildings,
  // zones, flight paths) redraws only when it or the camera changes; the live deck
  // (drones, marks, drafts) redraws with the animation. deck.gl always redraws every
  // layer of a deck, so with one deck every drone step would re-render the city; on a
  // software renderer that is the difference between ~30 ms and ~800 ms a frame.
  function sceneLayers(t) {
    const L = deck;
    // stable arrays between changes, so deck.gl re-uses its GPU buffers frame to frame
    const zkey = zones.size + ":" + zonesVer + ":" + [...zones.values()].map((z) => (zoneActive(z, t) ? 1 : 0)).join("");
    if (zkey !== cache.zkey) { cache.zkey = zkey; cache.zlist = [...zones.values()].filter((z) => zoneActive(z, t)); }
    flightList();
    const zlist = cache.zlist, flist = cache.flist, bp = buildingPolys();
    S.buildings = twin.count; S.buildingsLod = twin.lod; S.buildingsDrawn = bp.length;
    S.zones = zones.size; S.zonesActive = zlist.length;
    S.flights = flist.length;
    S.flightIds = flist.map((f) => f.flight_id).sort(); S.zoneIds = [...zones.keys()].sort();
    S.highlighted = [...highlight].sort();
    S.derivedIds = [...derived.keys()].sort();
    S.derivedCategories = Object.fromEntries([...derived.values()].map((z) => [z.id, z.derived.category]));
    const hl = S.highlighted.join();
    const ground = [];
    if (risk && show.risk) {
      ground.push(new L.SolidPolygonLayer({ id: "risk", _normalize: false, _windingOrder: "CCW", pickable: false,
        data: Object.assign({}, risk.data, { attributes: Object.assign({}, risk.data.attributes,
          { getFillColor: { value: riskColours(), size: 4 } }) }),
        extruded: false, parameters: { depthWriteEnabled: false } }));
    }
    S.layersShown = Object.keys(show).filter((k) => show[k] && (k !== "risk" || risk));
    return [
      new L.SolidPolygonLayer({ id: "ground", data: twin.ground, getPolygon: (d) => d.polygon,
        getFillColor: [42, 47, 54, 255], extruded: false, pickable: false }),
      ...ground,
      new L.SolidPolygonLayer({ id: "derived", data: [...derived.values()], visible: show.derived,
        getPolygon: (d) => d.ring.map((p) => [p[0], p[1], d.band_amsl_m[0]]),
        extruded: true, wireframe: true, getElevation: (d) => d.band_amsl_m[1] - d.band_amsl_m[0],
        getFillColor: (d) => (CATEGORY_COLOUR[d.derived.category] || [128, 128, 128]).concat([55]),
        getLineColor: (d) => (CATEGORY_COLOUR[d.derived.category] || [128, 128, 128]).concat([200]),
        pickable: false, material: false, parameters: { depthWriteEnabled: false },
        updateTriggers: { getPolygon: zonesVer } }),
      new L.SolidPolygonLayer({ id: "buildings", data: bp.data, _normalize: false, _windingOrder: "CCW",
        extruded: !(moving && S.motionLod !== false), visible: show.buildings, pickable: false,
        material: { ambient: 0.45, diffuse: 0.6, shininess: 16 } }),
      new L.SolidPolygonLayer({ id: "zones", data: zlist, visible: show.zones,
        getPolygon: (d) => d.ring.map((p) => [p[0], p[1], d.band_amsl_m[0]]),
        extruded: true, wireframe: true, getElevation: (d) => d.band_amsl_m[1] - d.band_amsl_m[0],
        getFillColor: (d) => (d.temporary ? [255, 170, 0, 70] : [230, 60, 60, 70]),
        getLineColor: (d) => (d.temporary ? [255, 170, 0, 200] : [230, 60, 60, 200]),
        pickable: false, material: false, parameters: { depthWriteEnabled: false },
        updateTriggers: { getPolygon: zonesVer } }),
      // flights: one binary line layer (a segment per instance, no joints: half the
      // cost of a path layer in software), the highlighted few as thick paths on top
      new L.LineLayer({ id: "flights", data: flightSegments(flist), visible: show.flights && !(moving && S.motionLod !== false),
        getWidth: 1.5, widthUnits: "pixels", pickable: false }),
      new L.PathLayer({ id: "highlighted", data: flist.filter((f) => highlight.has(f.flight_id)),
        getPath: (d) => d.path, visible: show.flights, getColor: [255, 0, 255, 255], getWidth: 5,
        widthUnits: "pixels", pickable: false, updateTriggers: { getPath: flightsVer } }),
    ];
  }
  function flightSegments(flist) {
    if (cache.segVer === flightsVer) return cache.seg;
    let n = 0;
    for (const f of flist) n += f.path.length - 1;
    const src = new Float64Array(3 * n), dst = new Float64Array(3 * n), col = new Uint8Array(4 * n);
    let k = 0;
    for (const f of flist) {
      const p = f.path, c = f.colour;
      for (let i = 1; i < p.length; i++, k++) {
        src.set(p[i - 1], 3 * k); dst.set(p[i], 3 * k);
        col[4 * k] = c[0]; col[4 * k + 1] = c[1]; col[4 * k + 2] = c[2]; col[4 * k + 3] = 200;
      }
    }
    cache.segVer = flightsVer; S.flightSegments = n;
    cache.seg = { length: n, attributes: { getSourcePosition: { value: src, size: 3 },
      getTargetPosition: { value: dst, size: 3 }, getColor: { value: col, size: 4 } } };
    return cache.seg;
  }
  function flightList() {
    if (flightsVer !== cache.fver) {
      cache.fver = flightsVer; cache.flist = [...flights.values()];
      const t = Date.now();
      for (const f of cache.flist) {
        if (!(f.flight_id in S.drawnUnixMs)) pendingDrawn.add(f.flight_id);
        if (!(f.flight_id in S.layerUnixMs)) S.layerUnixMs[f.flight_id] = t;  // in the layer's data
      }
    }
    return cache.flist;
  }
  function liveLayers(t) {
    const L = deck, flist = flightList(), drones = [];
    let fromTelemetry = 0;
    for (const f of flist) {
      const ld = live ? liveDrones.get(f.flight_id) : null;
      if (ld) { drones.push({ id: f.flight_id, p: ld.p, state: ld.state, colour: f.colour, live: true }); fromTelemetry++; continue; }
      const p = dronePosition(f, t);
      if (p) drones.push({ id: f.flight_id, p: p, state: f.state, colour: f.colour, live: false });
    }
    if (live) {   // telemetry of a flight the page does not hold (booked long ago)
      for (const ld of liveDrones.values()) {
        if (!flights.has(ld.id)) { drones.push({ id: ld.id, p: ld.p, state: ld.state, colour: opColour(ld.op), live: true }); fromTelemetry++; }
      }
    }
    S.drones = drones.length; S.dronesFromTelemetry = fromTelemetry;
    S.droneStates = Object.fromEntries(drones.map((d) => [d.id, d.live ? d.state : "planned"]));
    $("counts").textContent = `${twin.count} buildings · ${S.zonesActive}/${zones.size} zones active · ${flist.length} flights · ${drones.length} airborne (${fromTelemetry} from telemetry)`;
    $("time-label").textContent = timeLabel(t);
    const layers = [
      new L.ScatterplotLayer({ id: "drones", data: drones, getPosition: (d) => d.p, visible: show.drones,
        getFillColor: (d) => (highlight.has(d.id) ? [255, 0, 255, 255]
          : (d.live || d.state ? STATE_COLOUR[d.state] : null) || [255, 255, 255, 255]),
        getLineColor: (d) => d.colour.concat([255]), stroked: true, lineWidthUnits: "pixels",
        getLineWidth: 2, radiusUnits: "pixels", getRadius: (d) => (d.live ? 7 : 5), pickable: true }),
    ];
    const marks = [];
    if (clickMark) marks.push({ p: clickMark, c: [255, 255, 255, 255] });
    for (const p of draft.pts) marks.push({ p: [p[0], p[1], twin.raw.ground_max_m + 2], c: [255, 0, 255, 255] });
    if (marks.length) layers.push(new L.ScatterplotLayer({ id: "marks", data: marks,
      getPosition: (d) => d.p, getFillColor: (d) => d.c, radiusUnits: "pixels", getRadius: 6 }));
    const outline = draftOutline();
    if (outline) layers.push(new L.PathLayer({ id: "draft", data: [outline], getPath: (d) => d,
      getColor: [255, 0, 255, 255], getWidth: 2, widthUnits: "pixels" }));
    return layers;
  }

  // Dynamic resolution: on a software renderer (no GPU: SwiftShader, llvmpipe) the
  // scene is drawn at half resolution while the camera moves and at full resolution
  // once it rests; a person then sees motion at ~2x the frame rate, and sharp stills.
  let sceneScale = 1, restTimer = null, moving = false;
  function softwareRenderer() {
    const i = sceneDeck && sceneDeck.device && sceneDeck.device.info;
    return !!i && (i.gpuType === "cpu" || /swiftshader|llvmpipe|software/i.test((i.renderer || "") + " " + (i.gpu || "")));
  }
  function setSceneScale(k) {
    if (k === sceneScale) return;
    sceneScale = k; S.sceneScale = k;
    sceneDeck.setProps({ useDevicePixels: k });
  }
  // While the camera moves (software renderer only) the scene is also lighter: buildings
  // as flat footprints (their walls are most of the triangles), no flight lines (the
  // drones stay); the 3D city and the lines are back once the camera rests (300 ms).
  function viewChanged() {
    if (S.adaptive !== false && softwareRenderer()) {
      setSceneScale(S.movingScale || 0.5);
      if (!moving) { moving = true; sceneDirty = true; }
    }
    clearTimeout(restTimer);
    restTimer = setTimeout(() => {
      setSceneScale(1);
      if (moving) { moving = false; sceneDirty = true; }
      loadDetailIfBlocks();
    }, 300);
  }
  function loadDetailIfBlocks() { if (twin.lod !== "exact") loadDetail(); }

  function canvasIn(id) {
    const c = document.createElement("canvas");
    c.id = id; c.style.width = "100%"; c.style.height = "100%";
    $("map").appendChild(c);
    return c;
  }
  function makeDeck() {
    const bb = twin.bounds;
    // the whole twin in view (seen from the south-south-west, pitched)
    const fit = new deck.WebMercatorViewport({ width: window.innerWidth, height: window.innerHeight })
      .fitBounds([[bb[0], bb[1]], [bb[2], bb[3]]], { padding: 60 });
    viewState = { longitude: fit.longitude, latitude: fit.latitude - (bb[3] - bb[1]) * 0.25,
                  zoom: fit.zoom + 0.7, pitch: 50, bearing: -20, maxPitch: 85 };
    let sceneLoaded = false, liveDrawn = false;
    const done = () => {
      if (sceneLoaded && liveDrawn && !S.ready) { S.firstRenderMs = performance.now(); S.ready = true; }
    };
    const t = timeS();
    sceneDeck = new deck.Deck({
      canvas: canvasIn("scene"), id: "scene",
      views: new deck.MapView({ repeat: false }),
      viewState: viewState, controller: false,
      layers: sceneLayers(t),
      onAfterRender: () => {
        // when each flight was first on screen (tests: booking-to-map latency)
        if (pendingDrawn.size) { const t = Date.now(); for (const id of pendingDrawn) S.drawnUnixMs[id] = t; pendingDrawn.clear(); }
        S.sceneFrames = (S.sceneFrames || 0) + 1;
        if (!sceneLoaded && sceneDeck && sceneDeck.isInitialized && sceneDeck.props.layers.every((l) => l.isLoaded)) {
          sceneLoaded = true; done();
        }
      },
      onError: (e) => { S.error = String(e && e.message || e); },
    });
    liveDeck = new deck.Deck({
      canvas: canvasIn("live"), id: "live",
      views: new deck.MapView({ repeat: false }),
      viewState: viewState,
      onViewStateChange: (e) => { setView(e.viewState); },
      controller: true,
      layers: liveLayers(t),
      getCursor: () => (draft.mode ? "crosshair" : "grab"),
      getTooltip: tooltip,
      onAfterRender: () => { S.liveFrames = (S.liveFrames || 0) + 1; if (!liveDrawn && liveDeck && liveDeck.isInitialized) { liveDrawn = true; done(); } },
      onError: (e) => { S.error = String(e && e.message || e); },
    });
    S.deck = sceneDeck; S.liveDeck = liveDeck;
    // clicks are read from the DOM (a press that did not move), not from deck.gl's tap
    // gesture: with a software renderer a long frame between press and release makes
    // the gesture time out, and a click must never be lost
    let downAt = null;
    $("map").addEventListener("pointerdown", (ev) => { downAt = [ev.clientX, ev.clientY]; });
    $("map").addEventListener("click", (ev) => {
      if (downAt && Math.hypot(ev.clientX - downAt[0], ev.clientY - downAt[1]) > 6) return;
      const r = $("map").getBoundingClientRect();
      const c = liveDeck.getViewports()[0].unproject([ev.clientX - r.left, ev.clientY - r.top]);
      onClick({ coordinate: c });
    });
    requestAnimationFrame(frame);
  }
  function setView(v) {
    viewState = v;
    sceneDeck.setProps({ viewState: v });
    liveDeck.setProps({ viewState: v });
    viewChanged();
  }

  let lastFrame = null, lastDroneUpdate = 0;
  function frame(ts) {
    if (S.paused) { lastFrame = null; requestAnimationFrame(frame); return; }
    if (lastFrame !== null) {
      S.frameMs.push(ts - lastFrame);
      if (S.frameMs.length > 600) S.frameMs.shift();
    }
    lastFrame = ts;
    const t = timeS();
    if (sceneDirty) { sceneDirty = false; sceneDeck.setProps({ layers: sceneLayers(t) }); liveDirty = true; }
    // drones move (at most DRONE_HZ) while some are airborne in live mode; the rate
    // adapts to the renderer, so pushed changes never queue behind drone-only frames
    const recent = S.frameMs.slice(-10).sort((a, b) => a - b);
    const frameCost = recent.length ? recent[recent.length >> 1] : 16;
    const droneEvery = Math.max(1000 / DRONE_HZ, 3 * frameCost);
    if (liveDirty || (live && S.drones + dronesDue() > 0 && ts - lastDroneUpdate > droneEvery)) {
      lastDroneUpdate = ts; liveDirty = false;
      liveDeck.setProps({ layers: liveLayers(t) });
    }
    requestAnimationFrame(frame);
  }
  S.redraw = () => { sceneDirty = liveDirty = true; };
  S.project = (lon, lat, z) => {
    const vp = liveDeck.getViewports()[0];
    return vp.project([lon, lat, z || 0]);
  };
  S.setView = (v) => setView(Object.assign({}, viewState, v));
  S.setTime = (t) => { live = false; $("live").checked = false; tSel = t; $("time").value = String(Math.round(t)); sceneDirty = liveDirty = true; };

  // hover: drones only (the live deck); buildings, zones and flights are in the click
  // panel (picking the scene would cost one more software-rendered pass per move)
  function tooltip(info) {
    const o = info.object;
    if (!o || info.layer.id !== "drones") return null;
    return { text: `flight ${o.id} airborne` + (o.live ? ` (telemetry: ${o.state})` : " (approved plan, no telemetry)") };
  }

  // ------------------------------------------------------------------ click panel
  function onClick(info) {
    if (!info.coordinate) return;
    const lon = info.coordinate[0], lat = info.coordinate[1];
    if (draft.mode) { addDraftPoint(lon, lat); return; }
    showPoint(lon, lat);
  }
  async function showPoint(lon, lat) {
    const alt = Number($("alt").value) || 0;
    const q = `/api/point?lon=${lon.toFixed(7)}&lat=${lat.toFixed(7)}&alt_agl_m=${alt}&t=${timeS().toFixed(0)}`;
    try {
      const p = await api(q);
      clickMark = [lon, lat, p.alt_amsl_m];
      S.point = p;
      const rows = [
        ["position", `${p.lon_deg.toFixed(6)}, ${p.lat_deg.toFixed(6)}`],
        ["altitude", `${p.alt_agl_m} m AGL = ${p.alt_amsl_m} m AMSL`],
        ["grid code", p.grid_code], ["H3 cell", p.h3_cell], ["layer", String(p.layer)],
        ["Beidou", p.beidou], ["ground", `${p.ground_m} m AMSL`],
        ["roof", p.roof ? `${p.roof.roof_m} m AMSL (${p.roof.building_id}; ${p.roof.unknown_height ? "height unknown: blocked to the ceiling" : "height from " + p.roof.height_source})` : "no building"],
        ["blocked", p.blocked ? "yes, by " + p.blocked_by.map((b) => b.kind + " " + b.id).join(", ") : "no"],
        ["zones", p.zones.length ? p.zones.map((z) => `${z.id} ${z.band_amsl_m[0]}-${z.band_amsl_m[1]} m AMSL${z.active ? "" : " (not active now)"}`).join("; ") : "none"],
      ];
      const tb = document.createElement("table");
      for (const [k, v] of rows) {
        const tr = tb.insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = v;
      }
      $("info-body").replaceChildren(tb);
    } catch (e) {
      $("info-body").textContent = e.message;
    }
    liveDirty = true;
  }
  S.showPoint = showPoint;

  // ------------------------------------------------------------------ zone drawing
  function metersBetween(a, b) {
    const k = Math.PI / 180, lat = (a[1] + b[1]) / 2 * k;
    const dx = (b[0] - a[0]) * k * 6371008.8 * Math.cos(lat), dy = (b[1] - a[1]) * k * 6371008.8;
    return Math.hypot(dx, dy);
  }
  function draftOutline() {
    const z = twin.raw.ground_max_m + 2;
    if (draft.mode === "circle" && draft.pts.length === 2) {
      const c = draft.pts[0], r = metersBetween(c, draft.pts[1]), out = [];
      const k = Math.PI / 180;
      for (let i = 0; i <= 48; i++) {
        const a = 2 * Math.PI * i / 48;
        out.push([c[0] + r * Math.cos(a) / (6371008.8 * Math.cos(c[1] * k)) / k, c[1] + r * Math.sin(a) / 6371008.8 / k, z]);
      }
      return out;
    }
    if (draft.mode === "polygon" && draft.pts.length >= 2) {
      const out = draft.pts.map((p) => [p[0], p[1], z]);
      if (draft.pts.length >= 3) out.push(out[0]);
      return out;
    }
    return null;
  }
  function setMode(m) {
    draft = { mode: m, pts: [] };
    $("draw-circle").classList.toggle("active", m === "circle");
    $("draw-polygon").classList.toggle("active", m === "polygon");
    S.draft = draft; liveDirty = true;
  }
  function addDraftPoint(lon, lat) {
    if (draft.mode === "circle" && draft.pts.length >= 2) draft.pts = [];
    draft.pts.push([lon, lat]);
    S.draft = draft; liveDirty = true;
  }
  $("draw-circle").addEventListener("click", () => setMode("circle"));
  $("draw-polygon").addEventListener("click", () => setMode("polygon"));
  $("draw-clear").addEventListener("click", () => setMode(null));
  $("z-create").addEventListener("click", createZone);
  async function createZone() {
    const ref = $("z-ref").value;
    const body = { lower: { value_m: Number($("z-lower").value), reference: ref },
                   upper: { value_m: Number($("z-upper").value), reference: ref },
                   name: $("z-name").value || null, reason: $("z-reason").value };
    if (draft.mode === "circle" && draft.pts.length === 2) {
      body.circle = { lon_deg: draft.pts[0][0], lat_deg: draft.pts[0][1], radius_m: metersBetween(draft.pts[0], draft.pts[1]) };
    } else if (draft.mode === "polygon" && draft.pts.length >= 3) {
      body.polygon = draft.pts;
    } else {
      $("draw-result").textContent = "Draw a circle (2 clicks) or a polygon (3+ clicks) first.";
      return;
    }
    const start = nowS() + 60 * Number($("z-start").value || 0), dur = Number($("z-dur").value || 0);
    if (Number($("z-start").value || 0) > 0 || dur > 0) body.window = [start, dur > 0 ? start + 60 * dur : null];
    try {
      const r = await api("/api/zones", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
      zones.set(r.zone.id, r.zone); zonesVer++;
      highlight = new Set(r.affected_flight_ids);
      S.createdZone = r.zone.id;
      $("draw-result").textContent = `Zone ${r.zone.id} created; ${r.affected_flight_ids.length} accepted flight(s) cross it` + (r.affected_flight_ids.length ? " (highlighted)." : ".");
      setMode(null);
    } catch (e) {
      $("draw-result").textContent = "Refused: " + e.message;
      S.error = e.message;
    }
    sceneDirty = liveDirty = true;
  }

  // ------------------------------------------------------------------ push channel
  async function openStream(since) {
    const ctl = new AbortController();
    stream = ctl;
    try {
      const r = await fetch(`/api/events?since=${since}`, { headers: { Authorization: "Bearer " + token }, signal: ctl.signal });
      if (!r.ok) throw new Error("event stream: HTTP " + r.status);
      const reader = r.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let at;
        while ((at = buf.indexOf("\n\n")) >= 0) {
          const msg = buf.slice(0, at); buf = buf.slice(at + 2);
          let ev = "message", data = "";
          for (const line of msg.split("\n")) {
            if (line.startsWith("event: ")) ev = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) handle(ev, JSON.parse(data));
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      S.error = String(e.message || e);
    }
    setTimeout(() => openStream(S.lastSequence), 2000);  // reconnect from where we were
  }
  function handle(ev, d) {
    if (ev === "drones") { onDrones(d); return; }
    if (ev !== "change") return;
    S.lastSequence = Math.max(S.lastSequence, d.sequence);
    if (d.kind === "flight_accepted") flights.set(d.flight.flight_id, prepareFlight(d.flight));
    else if (d.kind === "flight_cancelled") flights.delete(d.flight.flight_id);
    else if (d.kind === "flight_state" && d.flight) {
      // live operations: conformance / lifecycle state of the flight (drone colour)
      const f = flights.get(d.flight.flight_id);
      if (f) f.state = d.flight_state;
      const ld = liveDrones.get(d.flight.flight_id);
      if (ld) { ld.state = d.flight_state; S.liveDrones[ld.id].state = d.flight_state; }
      if (d.flight_state === "ended" || d.flight_state === "cancelled") { flights.delete(d.flight.flight_id); liveDrones.delete(d.flight.flight_id); }
    }
    else if (d.kind === "zone_added" || d.kind === "zone_updated") (d.zone.derived ? derived : zones).set(d.zone.id, d.zone);
    else if (d.kind === "zone_removed") { zones.delete(d.zone.id); derived.delete(d.zone.id); }
    // a state change (the drone's colour) touches the live layer only; the scene (and
    // its GPU buffers) changes with flights and zones
    const scene = d.kind !== "flight_state" || d.flight_state === "ended" || d.flight_state === "cancelled";
    if (d.kind.startsWith("zone")) zonesVer++;
    if (d.kind.startsWith("flight")) flightsVer++;
    if (d.affected_flight_ids && d.affected_flight_ids.length) highlight = new Set(d.affected_flight_ids);
    const subject = d.flight ? d.flight.flight_id : d.zone ? d.zone.id : "";
    S.events.push({ sequence: d.sequence, kind: d.kind, subject: subject, receivedMs: performance.now(), receivedUnixMs: Date.now(), timeS: d.time_s });
    if (S.events.length > 200) S.events.shift();
    const li = document.createElement("li");
    li.textContent = `${timeLabel(d.time_s)} ${d.kind.replace("_", " ")} ${subject}` + (d.flight_state ? ` -> ${d.flight_state}` : "") + (d.actor ? ` by ${d.actor}` : "") + (d.reason ? ` (${d.reason})` : "");
    $("events").prepend(li);
    while ($("events").children.length > 50) $("events").lastChild.remove();
    // draw the change now rather than at the next animation frame
    liveDirty = true;
    if (scene) { sceneDirty = false; sceneDeck.setProps({ layers: sceneLayers(timeS()) }); }
  }

  if (token) { $("token").value = token; start(); }
})();
