// A PNG bar chart of 1 KB ping-pong latency percentiles per arm, rasterised here (no plotting
// library on the machine): RGB pixels, a 3×5 bitmap font scaled 2×, zlib deflate, CRC-32.
import { crc32, deflateSync } from 'node:zlib';
import type { BenchResult } from './report.js';

const GLYPHS: Record<string, string> = {
  A: '010101111101101', B: '110101110101110', C: '011100100100011', D: '110101101101110', E: '111100110100111',
  F: '111100110100100', G: '011100101101011', H: '101101111101101', I: '111010010010111', J: '001001001101010',
  K: '101101110101101', L: '100100100100111', M: '101111111101101', N: '110101101101101', O: '010101101101010',
  P: '110101110100100', Q: '010101101110011', R: '110101110101101', S: '011100010001110', T: '111010010010010',
  U: '101101101101111', V: '101101101101010', W: '101101111111101', X: '101101010101101', Y: '101101010010010',
  Z: '111001010100111', '0': '111101101101111', '1': '010110010010111', '2': '110001010100111', '3': '110001010001110',
  '4': '101101111001001', '5': '111100110001110', '6': '011100111101111', '7': '111001010010010', '8': '111101111101111',
  '9': '111101111001110', '-': '000000111000000', '.': '000000000000010', ' ': '000000000000000', '/': '001001010100100',
  '(': '010100100100010', ')': '010001001001010', ':': '000010000010000',
};

type RGB = [number, number, number];
const SERIES: { key: string; label: string; color: RGB }[] = [
  { key: 'latency.p50', label: 'P50', color: [66, 133, 244] },
  { key: 'latency.p90', label: 'P90', color: [52, 168, 83] },
  { key: 'latency.p99', label: 'P99', color: [251, 188, 5] },
  { key: 'latency.p999', label: 'P99.9', color: [234, 67, 53] },
];

class Canvas {
  readonly px: Buffer;
  constructor(
    readonly w: number,
    readonly h: number,
  ) {
    this.px = Buffer.alloc(w * h * 3, 255);
  }
  rect(x: number, y: number, w: number, h: number, c: RGB): void {
    for (let j = Math.max(0, Math.floor(y)); j < Math.min(this.h, Math.floor(y + h)); j++)
      for (let i = Math.max(0, Math.floor(x)); i < Math.min(this.w, Math.floor(x + w)); i++) this.px.set(c, (j * this.w + i) * 3);
  }
  text(x: number, y: number, s: string, c: RGB = [0, 0, 0], scale = 2): void {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const g = GLYPHS[ch] ?? GLYPHS[' ']!;
      for (let r = 0; r < 5; r++) for (let col = 0; col < 3; col++) if (g[r * 3 + col] === '1') this.rect(cx + col * scale, y + r * scale, scale, scale, c);
      cx += 4 * scale;
    }
  }
  png(): Buffer {
    const raw = Buffer.alloc((this.w * 3 + 1) * this.h);
    for (let y = 0; y < this.h; y++) this.px.copy(raw, y * (this.w * 3 + 1) + 1, y * this.w * 3, (y + 1) * this.w * 3);
    const chunk = (type: string, data: Buffer): Buffer => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(data.length);
      const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(td) >>> 0);
      return Buffer.concat([len, td, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(this.w, 0);
    ihdr.writeUInt32BE(this.h, 4);
    ihdr.writeUInt8(8, 8); // bit depth
    ihdr.writeUInt8(2, 9); // truecolour RGB
    return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
  }
}

export function renderChart(b: BenchResult): Buffer {
  const arms = b.arms.filter((a) => !a.skipped && a.summary?.['latency.p50']);
  const groupW = 4 * 18 + 24;
  const left = 70;
  const top = 50;
  const plotH = 300;
  const w = Math.max(480, left + arms.length * groupW + 20);
  const h = top + plotH + 90;
  const c = new Canvas(w, h);
  c.text(10, 10, '1 KB TCP PING-PONG LATENCY PER ARM - US - MEDIAN OF ROUNDS - LOG SCALE');
  // Log scale: p50 (tens of µs) and p99.9 (up to ms under load) on one chart.
  const values = arms.flatMap((a) => SERIES.map((s) => a.summary?.[s.key]?.median ?? 0));
  const decades = Math.max(1, Math.ceil(Math.log10(Math.max(10, ...values.filter(Number.isFinite)))));
  const yOf = (v: number) => (v <= 1 ? 0 : (plotH * Math.min(Math.log10(v), decades)) / decades);
  for (let i = 0; i <= decades; i++) {
    const y = top + plotH - (plotH * i) / decades;
    c.rect(left - 4, y, w - left - 10, 1, [220, 220, 220]);
    c.text(4, y - 5, String(10 ** i));
  }
  c.rect(left - 4, top, 1, plotH, [0, 0, 0]);
  arms.forEach((a, ai) => {
    const gx = left + ai * groupW;
    SERIES.forEach((s, si) => {
      const v = a.summary?.[s.key]?.median ?? 0;
      const bh = Number.isFinite(v) ? yOf(v) : 0;
      c.rect(gx + si * 18, top + plotH - bh, 16, bh, s.color);
    });
    const name = a.name.replace('haproxy-splice', 'hap-splice');
    c.text(gx, top + plotH + 8, name.slice(0, 11));
  });
  SERIES.forEach((s, i) => {
    c.rect(left + i * 90, h - 24, 12, 12, s.color);
    c.text(left + i * 90 + 16, h - 22, s.label);
  });
  return c.png();
}
