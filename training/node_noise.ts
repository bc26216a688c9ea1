// The node's own noise measure (src/measure/anatomy-probe.ts probeVolume -> probe.noiseHu) on a raw HU volume, for
// checking training/noise_measure.py (the numpy port the denoiser's noise-level input is trained on) against it.
// usage: npx vite-node training/node_noise.ts vol.f32 slices rows columns rowMm columnMm sliceSpacingMm
// prints JSON: noiseHu, fatNoiseHu, tissueNoiseHu, noiseSlices, the probe summary.
import { readFileSync } from "node:fs";
import type { CtVolume } from "../src/dicom/ct-volume.js";
import { probeVolume } from "../src/measure/anatomy-probe.js";

const [file, slicesArg, rowsArg, columnsArg, rowMm, columnMm, spacing] = process.argv.slice(2);
const [slices, rows, columns] = [Number(slicesArg), Number(rowsArg), Number(columnsArg)];
const buf = readFileSync(file!);
const hu = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
if (hu.length !== slices * rows * columns) throw new Error(`${hu.length} voxels, expected ${slices * rows * columns}`);
const volume: CtVolume = {
  studyInstanceUID: "1.2.3", seriesInstanceUID: "1.2.3.4", frameOfReferenceUID: "1.2.3.5", rows, columns, slices, hu,
  pixelSpacing: [Number(rowMm), Number(columnMm)], sliceSpacing: Number(spacing),
  imageOrientationPatient: [1, 0, 0, 0, 1, 0],
  imagePositionPatient: Array.from({ length: slices }, (_, k) => [-(columns * Number(columnMm)) / 2, -(rows * Number(rowMm)) / 2, k * Number(spacing)] as [number, number, number]),
  sourceSlices: [], sliceHeaders: Array.from({ length: slices }, () => ({})),
};
const probed = await probeVolume(volume);
const m = probed.bloodAndNoise;
process.stdout.write(JSON.stringify({ noiseHu: probed.probe.noiseHu, fatNoiseHu: m.fatNoiseHu, tissueNoiseHu: m.tissueNoiseHu,
  noiseSlices: m.noiseSlices, summary: probed.probe.summary }) + "\n");
