#!/usr/bin/env node
// Draws the extension icon (images/extension-icon.png, 128×128) and the task icons
// (tasks/<task>/icon.png, 32×32) from simple geometry, and encodes them as PNG with node:zlib.
// No image tools needed. The PNGs are committed; run this only to change the drawings:
//   node scripts/draw-icons.mjs [--root DIR]
// The motif: a shipping container (the image), a loop arrow (the outer loop), a padlock (pinned by
// digest). Task icons reuse it: a tag for BuildAndTag, a flask and a check mark for ContainerizedTest,
// an up arrow and a padlock for PushWithDigest, a down arrow into a Docker host for ComposeDeploy, a
// ship's wheel for KubernetesDeploy.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { REPO_ROOT, isMain, resolveRoot } from './tasks.mjs';

// ---- colours --------------------------------------------------------------------------------
const hex = (h, a = 255) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16), a];
const NAVY_TOP = hex('#24507f');
const NAVY_BOTTOM = hex('#132a47');
const TEAL = hex('#2ec4b6');
const ORANGE = hex('#f4a259');
const ORANGE_DARK = hex('#c96f2b');
const ORANGE_LIGHT = hex('#ffc58a');
const GOLD = hex('#ffd166');
const GOLD_DARK = hex('#b8860b');
const GREEN = hex('#5fd38d');
const INK = hex('#13263f');
const GLASS = hex('#dfe7ef');
const WHITE = hex('#f7fbff');

// ---- shapes: each is (x, y) → boolean in a unit square, y pointing down -----------------------
const rect = (x0, y0, x1, y1) => (x, y) => x >= x0 && x <= x1 && y >= y0 && y <= y1;

function roundRect(x0, y0, x1, y1, r) {
  return (x, y) => {
    if (x < x0 || x > x1 || y < y0 || y > y1) return false;
    const cx = Math.min(Math.max(x, x0 + r), x1 - r);
    const cy = Math.min(Math.max(y, y0 + r), y1 - r);
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  };
}

const circle = (cx, cy, r) => (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;

/** An annulus between radii r0 and r1, from angle a0 to a1 (degrees, clockwise from 3 o'clock). */
function arc(cx, cy, r0, r1, a0, a1) {
  return (x, y) => {
    const d2 = (x - cx) ** 2 + (y - cy) ** 2;
    if (d2 < r0 * r0 || d2 > r1 * r1) return false;
    let a = (Math.atan2(y - cy, x - cx) * 180) / Math.PI;
    while (a < a0) a += 360;
    return a <= a1;
  };
}

/** Even-odd point in polygon. */
function polygon(points) {
  return (x, y) => {
    let inside = false;
    for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
      const [xi, yi] = points[i];
      const [xj, yj] = points[j];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  };
}

/** A thick line segment from (x0, y0) to (x1, y1), `w` wide. */
function stroke(x0, y0, x1, y1, w) {
  return (x, y) => {
    const dx = x1 - x0;
    const dy = y1 - y0;
    const t = Math.max(0, Math.min(1, ((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)));
    return (x - (x0 + t * dx)) ** 2 + (y - (y0 + t * dy)) ** 2 <= (w / 2) ** 2;
  };
}

const union = (...shapes) => (x, y) => shapes.some((s) => s(x, y));
const translate = (shape, dx, dy) => (x, y) => shape(x - dx, y - dy);

// A fill is a colour or (x, y) → colour.
const vertical = (top, bottom) => (_x, y) => top.map((c, i) => Math.round(c + (bottom[i] - c) * y));

// ---- pieces of the drawings (layers: [shape, fill], painted in order) ------------------------
function background() {
  return [[roundRect(0.02, 0.02, 0.98, 0.98, 0.18), vertical(NAVY_TOP, NAVY_BOTTOM)]];
}

/**
 * A shipping container with corrugated doors, its top-left corner at (x0, y0): top and bottom
 * rails `rail`×h high, corner posts unless `posts` is false, `ridges` ridges `ridge`×w wide
 * leaving `inset`×h at top and bottom.
 */
function container(x0, y0, w, h, { ridges = 5, rail = 0.12, posts = true, ridge = 0.025, inset = 0.2 } = {}) {
  const layers = [
    [rect(x0, y0, x0 + w, y0 + h), ORANGE],
    [rect(x0, y0, x0 + w, y0 + h * rail), ORANGE_DARK], // top rail
    [rect(x0, y0 + h * (1 - rail), x0 + w, y0 + h), ORANGE_DARK], // bottom rail
  ];
  if (posts) layers.push([rect(x0, y0, x0 + w * 0.05, y0 + h), ORANGE_DARK], [rect(x0 + w * 0.95, y0, x0 + w, y0 + h), ORANGE_DARK]);
  for (let i = 0; i < ridges; i++) {
    const cx = x0 + w * 0.1 + (w * 0.8 * (i + 0.5)) / ridges;
    layers.push([rect(cx - w * ridge, y0 + h * inset, cx + w * ridge, y0 + h * (1 - inset)), ORANGE_LIGHT]);
  }
  return layers;
}

/** The container under test: plainer (no corner posts), with three ridges. */
const testedContainer = (x0, y0, w, h) => container(x0, y0, w, h, { ridges: 3, rail: 0.14, posts: false, ridge: 0.03, inset: 0.24 });

/** A laboratory flask (the test) with green liquid, standing on the container. */
function flask() {
  const glass = polygon([[0.5, 0.1], [0.62, 0.1], [0.62, 0.26], [0.76, 0.5], [0.36, 0.5], [0.5, 0.26]]);
  const outline = polygon([[0.47, 0.07], [0.65, 0.07], [0.65, 0.25], [0.8, 0.53], [0.32, 0.53], [0.47, 0.25]]);
  return [[outline, INK], [glass, GLASS], [polygon([[0.43, 0.38], [0.69, 0.38], [0.76, 0.5], [0.36, 0.5]]), GREEN]];
}

/** A check mark (passed) through (x0, y0), (x1, y1), (x2, y2): an ink outline under a green stroke. */
function checkMark(x0, y0, x1, y1, x2, y2) {
  return [
    [stroke(x0, y0, x1, y1, 0.16), INK], [stroke(x1, y1, x2, y2, 0.16), INK],
    [stroke(x0, y0, x1, y1, 0.09), GREEN], [stroke(x1, y1, x2, y2, 0.09), GREEN],
  ];
}

/** The outer loop: an almost full circle with an arrowhead, clockwise. */
function loopArrow(cx, cy, r, thickness, color) {
  const start = 200;
  const end = 470; // degrees, clockwise from 3 o'clock; the gap sits at the upper left
  const tip = (end * Math.PI) / 180;
  const dir = [-Math.sin(tip), Math.cos(tip)]; // tangent, clockwise on screen
  const nrm = [Math.cos(tip), Math.sin(tip)];
  const base = [cx + r * nrm[0], cy + r * nrm[1]];
  const half = thickness * 1.35;
  const len = thickness * 1.9;
  const head = polygon([
    [base[0] + nrm[0] * half, base[1] + nrm[1] * half],
    [base[0] - nrm[0] * half, base[1] - nrm[1] * half],
    [base[0] + dir[0] * len, base[1] + dir[1] * len],
  ]);
  return [[union(arc(cx, cy, r - thickness / 2, r + thickness / 2, start, end), head), color]];
}

/** A padlock whose body's top-left corner is at (x0, y0). */
function padlock(x0, y0, w, h) {
  const cx = x0 + w / 2;
  return [
    [arc(cx, y0, w * 0.26, w * 0.4, 180, 360), INK], // outline of the shackle
    [arc(cx, y0, w * 0.3, w * 0.36, 180, 360), GLASS],
    [rect(cx - w * 0.4, y0 - 0.001, cx - w * 0.26, y0 + h * 0.2), INK],
    [rect(cx + w * 0.26, y0 - 0.001, cx + w * 0.4, y0 + h * 0.2), INK],
    [rect(cx - w * 0.36, y0 - 0.001, cx - w * 0.3, y0 + h * 0.2), GLASS],
    [rect(cx + w * 0.3, y0 - 0.001, cx + w * 0.36, y0 + h * 0.2), GLASS],
    [roundRect(x0 - w * 0.04, y0 - h * 0.04, x0 + w * 1.04, y0 + h * 1.04, w * 0.14), INK],
    [roundRect(x0, y0, x0 + w, y0 + h, w * 0.11), GOLD],
    [rect(x0, y0 + h * 0.78, x0 + w, y0 + h * 0.84), GOLD_DARK],
    [circle(cx, y0 + h * 0.38, w * 0.11), INK], // keyhole
    [polygon([[cx - w * 0.05, y0 + h * 0.4], [cx + w * 0.05, y0 + h * 0.4], [cx + w * 0.08, y0 + h * 0.68], [cx - w * 0.08, y0 + h * 0.68]]), INK],
  ];
}

/** A luggage tag pointing left with a hole, its right edge at x1. */
function tag(x0, y0, x1, y1) {
  const h = y1 - y0;
  const point = x0 + h * 0.5;
  const body = polygon([[x0, y0 + h / 2], [point, y0], [x1, y0], [x1, y1], [point, y1]]);
  const outline = polygon([[x0 - h * 0.14, y0 + h / 2], [point - h * 0.02, y0 - h * 0.12], [x1 + h * 0.1, y0 - h * 0.12], [x1 + h * 0.1, y1 + h * 0.12], [point - h * 0.02, y1 + h * 0.12]]);
  return [
    [outline, INK],
    [body, TEAL],
    [circle(point + h * 0.05, y0 + h / 2, h * 0.14), INK],
  ];
}

/** A fat arrow in the box from y0 to y0 + h, pointing up (or down). */
function arrow(cx, y0, w, h, color, { down = false } = {}) {
  const y = (k) => y0 + h * (down ? 1 - k : k); // k: 0 at the tip, 1 at the base
  return [
    [polygon([[cx, y(0)], [cx + w / 2, y(0.45)], [cx + w * 0.18, y(0.45)], [cx + w * 0.18, y(1)], [cx - w * 0.18, y(1)], [cx - w * 0.18, y(0.45)], [cx - w / 2, y(0.45)]]), color],
  ];
}

/** A Docker host: a rack server with two drive bays and status lights. */
function server(x0, y0, x1, y1) {
  const h = y1 - y0;
  const layers = [[roundRect(x0 - 0.02, y0 - 0.02, x1 + 0.02, y1 + 0.02, 0.06), INK], [roundRect(x0, y0, x1, y1, 0.05), GLASS]];
  for (const row of [0.3, 0.72]) {
    layers.push([rect(x0 + (x1 - x0) * 0.12, y0 + h * (row - 0.1), x0 + (x1 - x0) * 0.62, y0 + h * (row + 0.1)), INK]);
    layers.push([circle(x0 + (x1 - x0) * 0.82, y0 + h * row, h * 0.1), TEAL]);
  }
  return layers;
}

/** A ship's wheel (the Kubernetes helm): a ring, a hub and seven spokes with handles. */
function wheel(cx, cy, r, color) {
  const spokes = [];
  for (let i = 0; i < 7; i++) {
    const a = (i * 2 * Math.PI) / 7 - Math.PI / 2;
    const [dx, dy] = [Math.cos(a), Math.sin(a)];
    const [nx, ny] = [-dy * r * 0.09, dx * r * 0.09];
    const tip = r * 1.22;
    spokes.push(polygon([[cx + nx, cy + ny], [cx - nx, cy - ny], [cx + dx * tip - nx, cy + dy * tip - ny], [cx + dx * tip + nx, cy + dy * tip + ny]]));
    spokes.push(circle(cx + dx * tip, cy + dy * tip, r * 0.14));
  }
  return [
    [union(arc(cx, cy, r * 0.72, r, 0, 360), circle(cx, cy, r * 0.26), ...spokes), color],
  ];
}

// ---- the drawings --------------------------------------------------------------------------
/** A drawing `size` pixels square: the background, then the layers of `pieces` in order. */
const icon = (size, pieces) => ({ size, layers: () => [...background(), ...pieces().flat()] });

export const DRAWINGS = {
  extension: icon(128, () => [loopArrow(0.5, 0.5, 0.35, 0.075, TEAL), container(0.22, 0.35, 0.5, 0.3, { ridges: 6 }), padlock(0.62, 0.62, 0.22, 0.18)]),
  'build-and-tag': icon(32, () => [container(0.12, 0.2, 0.62, 0.4, { ridges: 3 }), tag(0.46, 0.62, 0.88, 0.86)]),
  'containerized-test': icon(32, () => [testedContainer(0.1, 0.46, 0.58, 0.36), flask(), checkMark(0.6, 0.72, 0.71, 0.84, 0.92, 0.56)]),
  'compose-deploy': icon(32, () => [container(0.1, 0.1, 0.5, 0.32, { ridges: 3 }), arrow(0.76, 0.08, 0.3, 0.36, WHITE, { down: true }), server(0.12, 0.56, 0.88, 0.88)]),
  'push-with-digest': icon(32, () => [container(0.1, 0.4, 0.56, 0.36, { ridges: 3 }), arrow(0.38, 0.08, 0.34, 0.3, WHITE), padlock(0.64, 0.6, 0.26, 0.26)]),
  'kubernetes-deploy': icon(32, () => [wheel(0.36, 0.36, 0.2, TEAL), container(0.3, 0.56, 0.56, 0.3, { ridges: 3 }), padlock(0.66, 0.5, 0.22, 0.2)]),
};

/** Renders layers into an RGBA buffer with `ss`×`ss` supersampling per pixel. */
export function render(layers, size, ss = 5) {
  const out = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0, g = 0, b = 0, a = 0; // premultiplied sums
      for (let sy = 0; sy < ss; sy++) {
        for (let sx = 0; sx < ss; sx++) {
          const x = (px + (sx + 0.5) / ss) / size;
          const y = (py + (sy + 0.5) / ss) / size;
          let c = [0, 0, 0, 0]; // premultiplied colour, alpha 0..1
          for (const [shape, fill] of layers) {
            if (!shape(x, y)) continue;
            const f = typeof fill === 'function' ? fill(x, y) : fill;
            const fa = f[3] / 255;
            c = [f[0] * fa + c[0] * (1 - fa), f[1] * fa + c[1] * (1 - fa), f[2] * fa + c[2] * (1 - fa), fa + c[3] * (1 - fa)];
          }
          r += c[0];
          g += c[1];
          b += c[2];
          a += c[3];
        }
      }
      const i = (py * size + px) * 4;
      const n = ss * ss;
      out[i + 3] = Math.round((a / n) * 255);
      if (a > 0) {
        out[i] = Math.round(r / a);
        out[i + 1] = Math.round(g / a);
        out[i + 2] = Math.round(b / a);
      }
    }
  }
  return out;
}

// ---- PNG ------------------------------------------------------------------------------------
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** Encodes an 8-bit RGBA buffer as PNG (filter 0 on every row). */
export function encodePng(rgba, width, height) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  const stride = width * 4;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0;
    rgba.copy(raw, y * (stride + 1) + 1, y * stride, (y + 1) * stride);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Writes every drawing under `root`; returns the paths written. */
export function drawIcons(root = REPO_ROOT) {
  const written = [];
  for (const [name, drawing] of Object.entries(DRAWINGS)) {
    const file = name === 'extension' ? path.join(root, 'images', 'extension-icon.png') : path.join(root, 'tasks', name, 'icon.png');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, encodePng(render(drawing.layers(), drawing.size), drawing.size, drawing.size));
    written.push(file);
  }
  return written;
}

if (isMain(import.meta.url)) {
  for (const file of drawIcons(resolveRoot())) console.log(`wrote ${path.relative(process.cwd(), file)} (${fs.statSync(file).size} bytes)`);
}
