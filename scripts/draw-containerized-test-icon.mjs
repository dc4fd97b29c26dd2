#!/usr/bin/env node
// Draws tasks/containerized-test/icon.png (32×32): the project's container motif with a test flask
// and a check mark. Uses the renderer and PNG encoder of draw-icons.mjs (kept separate so that the
// drawings of other tasks are not touched):  node scripts/draw-containerized-test-icon.mjs [--root DIR]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodePng, render } from './draw-icons.mjs';
import { isMain, resolveRoot } from './tasks.mjs';

const hex = (h, a = 255) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16), a];
const NAVY_TOP = hex('#24507f');
const NAVY_BOTTOM = hex('#132a47');
const ORANGE = hex('#f4a259');
const ORANGE_DARK = hex('#c96f2b');
const ORANGE_LIGHT = hex('#ffc58a');
const GREEN = hex('#5fd38d');
const INK = hex('#13263f');
const GLASS = hex('#dfe7ef');

const rect = (x0, y0, x1, y1) => (x, y) => x >= x0 && x <= x1 && y >= y0 && y <= y1;
function roundRect(x0, y0, x1, y1, r) {
  return (x, y) => {
    if (x < x0 || x > x1 || y < y0 || y > y1) return false;
    const cx = Math.min(Math.max(x, x0 + r), x1 - r);
    const cy = Math.min(Math.max(y, y0 + r), y1 - r);
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  };
}
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
/** A thick line segment from (x0, y0) to (x1, y1). */
function stroke(x0, y0, x1, y1, w) {
  return (x, y) => {
    const dx = x1 - x0;
    const dy = y1 - y0;
    const t = Math.max(0, Math.min(1, ((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)));
    return (x - (x0 + t * dx)) ** 2 + (y - (y0 + t * dy)) ** 2 <= (w / 2) ** 2;
  };
}
const vertical = (top, bottom) => (_x, y) => top.map((c, i) => Math.round(c + (bottom[i] - c) * y));

export function containerizedTestLayers() {
  const layers = [[roundRect(0.02, 0.02, 0.98, 0.98, 0.18), vertical(NAVY_TOP, NAVY_BOTTOM)]];
  // The container (the image under test).
  const [x0, y0, w, h] = [0.1, 0.46, 0.58, 0.36];
  layers.push([rect(x0, y0, x0 + w, y0 + h), ORANGE]);
  layers.push([rect(x0, y0, x0 + w, y0 + h * 0.14), ORANGE_DARK]);
  layers.push([rect(x0, y0 + h * 0.86, x0 + w, y0 + h), ORANGE_DARK]);
  for (let i = 0; i < 3; i++) {
    const cx = x0 + w * 0.1 + (w * 0.8 * (i + 0.5)) / 3;
    layers.push([rect(cx - w * 0.03, y0 + h * 0.24, cx + w * 0.03, y0 + h * 0.76), ORANGE_LIGHT]);
  }
  // A flask standing on it (the test).
  const flask = polygon([[0.5, 0.1], [0.62, 0.1], [0.62, 0.26], [0.76, 0.5], [0.36, 0.5], [0.5, 0.26]]);
  const flaskOutline = polygon([[0.47, 0.07], [0.65, 0.07], [0.65, 0.25], [0.8, 0.53], [0.32, 0.53], [0.47, 0.25]]);
  layers.push([flaskOutline, INK], [flask, GLASS], [polygon([[0.43, 0.38], [0.69, 0.38], [0.76, 0.5], [0.36, 0.5]]), GREEN]);
  // A check mark (passed) at the lower right.
  layers.push([stroke(0.6, 0.72, 0.71, 0.84, 0.16), INK], [stroke(0.71, 0.84, 0.92, 0.56, 0.16), INK]);
  layers.push([stroke(0.6, 0.72, 0.71, 0.84, 0.09), GREEN], [stroke(0.71, 0.84, 0.92, 0.56, 0.09), GREEN]);
  return layers;
}

export function drawContainerizedTestIcon(root) {
  const file = path.join(root, 'tasks', 'containerized-test', 'icon.png');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, encodePng(render(containerizedTestLayers(), 32), 32, 32));
  return file;
}

if (isMain(import.meta.url)) {
  const file = drawContainerizedTestIcon(resolveRoot());
  console.log(`wrote ${path.relative(process.cwd(), file)} (${fs.statSync(file).size} bytes)`);
}
