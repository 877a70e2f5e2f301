// Time-series line charts in plain SVG: no library, no network. A chart shows
// the last `windowMs` (or less while the history is shorter) of points {t (ms), v: [value or null per series]}; a null
// breaks the line (no data in that second). Hovering shows the values at that
// time in the legend.
const NS = 'http://www.w3.org/2000/svg';
const HEIGHT = 190;
const PAD = { left: 52, right: 10, top: 10, bottom: 22 };

function svg(tag, attrs = {}, parent) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

/** The smallest "nice" number (1, 2, 2.5, 5 x 10^n) >= x. */
function niceCeil(x) {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x - 1e-12) return m * p;
  return 10 * p;
}

export class LineChart {
  /**
   * @param {HTMLElement} el container
   * @param {{series: {label: string}[], format: (v: number) => string, windowMs?: number, minMax?: number, area?: boolean, integer?: boolean}} o
   */
  constructor(el, o) {
    this.el = el;
    this.o = { windowMs: 5 * 60 * 1000, minMax: 1, area: false, ...o };
    this.points = [];
    this.hoverT = null;
    this.svg = svg('svg', { role: 'img', 'aria-label': o.label || 'chart' });
    el.appendChild(this.svg);
    this.legend = document.createElement('div');
    this.legend.className = 'legend';
    el.after(this.legend);
    this.legendValues = this.o.series.map((s, i) => {
      const item = document.createElement('span');
      const sw = document.createElement('span');
      sw.className = `swatch s${i + 1}`;
      const b = document.createElement('b');
      b.textContent = '–';
      item.append(sw, s.label, b);
      this.legend.appendChild(item);
      return b;
    });
    this.svg.addEventListener('mousemove', (e) => {
      const r = this.svg.getBoundingClientRect();
      const x = e.clientX - r.left;
      if (x < PAD.left || x > r.width - PAD.right) return this.leave();
      this.hoverT = this.t0 + ((x - PAD.left) / (r.width - PAD.left - PAD.right)) * this.windowMs;
      this.render();
    });
    this.svg.addEventListener('mouseleave', () => this.leave());
    new ResizeObserver(() => this.render()).observe(el);
  }

  leave() {
    if (this.hoverT === null) return;
    this.hoverT = null;
    this.render();
  }

  update(points, now) {
    this.points = points;
    this.now = now;
    this.render();
  }

  render() {
    const width = this.el.clientWidth - 24;
    if (width <= 0) return;
    const now = this.now ?? Date.now();
    // The window grows with the history, from one minute up to windowMs.
    const first = this.points.length ? this.points[0].t : now;
    const windowMs = Math.min(this.o.windowMs, Math.max(60e3, Math.ceil((now - first) / 60e3) * 60e3));
    const { format } = this.o;
    this.windowMs = windowMs;
    this.t0 = now - windowMs;
    const pts = this.points.filter((p) => p.t >= this.t0);
    const s = this.svg;
    while (s.firstChild) s.removeChild(s.firstChild);
    s.setAttribute('viewBox', `0 0 ${width} ${HEIGHT}`);
    const plotW = width - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;

    let top = this.o.minMax;
    for (const p of pts) for (const v of p.v) if (v !== null && v > top) top = v;
    // Four or so gridlines at a nice step (whole numbers for counts).
    let step = niceCeil((top * 1.1) / 4);
    if (this.o.integer) step = Math.max(1, Math.ceil(step));
    const ticks = Math.max(1, Math.ceil((top * 1.05) / step));
    const max = step * ticks;
    const x = (t) => PAD.left + ((t - this.t0) / windowMs) * plotW;
    const y = (v) => PAD.top + plotH - (v / max) * plotH;

    const axis = svg('g', { class: 'axis' }, s);
    for (let i = 0; i <= ticks; i++) {
      const v = step * i;
      svg('line', { class: 'gridline', x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }, axis);
      const label = svg('text', { x: PAD.left - 8, y: y(v) + 4, 'text-anchor': 'end' }, axis);
      label.textContent = format(v);
    }
    const every = [10e3, 15e3, 30e3, 60e3].find((e) => windowMs / e <= 6) || 60e3;
    for (let ago = 0; ago <= windowMs + 1; ago += every) {
      const anchor = ago === 0 ? 'end' : ago + every > windowMs + 1 ? 'start' : 'middle';
      const label = svg('text', { x: x(now - ago), y: HEIGHT - 4, 'text-anchor': anchor }, axis);
      label.textContent = ago === 0 ? 'now' : ago % 60e3 === 0 ? `−${ago / 60e3} min` : `−${ago / 1e3} s`;
    }

    this.o.series.forEach((_, i) => {
      let d = '';
      let area = '';
      let run = [];
      const flush = () => {
        if (run.length === 0) return;
        d += run.map(([px, py], k) => `${k ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join('');
        if (this.o.area && i === 0) {
          area += `M${run[0][0].toFixed(1)},${y(0)}` + run.map(([px, py]) => `L${px.toFixed(1)},${py.toFixed(1)}`).join('') +
            `L${run[run.length - 1][0].toFixed(1)},${y(0)}Z`;
        }
        run = [];
      };
      for (const p of pts) {
        const v = p.v[i];
        if (v === null || v === undefined || Number.isNaN(v)) flush();
        else run.push([x(p.t), y(v)]);
      }
      flush();
      if (area) svg('path', { class: `area s${i + 1}`, d: area }, s);
      if (d) svg('path', { class: `line s${i + 1}`, d, fill: 'none' }, s);
    });

    // Legend: the values at the hovered time, else the latest.
    let shown = pts[pts.length - 1];
    if (this.hoverT !== null && pts.length) {
      shown = pts.reduce((a, b) => (Math.abs(b.t - this.hoverT) < Math.abs(a.t - this.hoverT) ? b : a));
      svg('line', { class: 'cursor', x1: x(shown.t), x2: x(shown.t), y1: PAD.top, y2: PAD.top + plotH }, s);
    }
    this.legendValues.forEach((b, i) => {
      const v = shown ? shown.v[i] : null;
      b.textContent = v === null || v === undefined || Number.isNaN(v) ? '–' : format(v);
    });
  }
}
