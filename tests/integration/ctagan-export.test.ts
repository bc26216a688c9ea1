/**
 * A researcher's generator drops in: the CTA-GAN / RegGAN generator (PyTorch, here with seeded random weights) is
 * exported by training/export_ctagan.py into a temporary models folder, loaded by the product's ModelRegistry (the
 * manifest validated, the sha256 checked) and run by the product's InferenceService (worker thread, onnxruntime-node
 * CPU, the HU <-> network mapping of the manifest) on real 512x512 slices of LIDC-IDRI-0002. Its output must match
 * PyTorch's on the same HU slices, mapped the same way by the export script.
 *
 * Tolerance: the output is tanh in [-1, 1] mapped to 4095 HU, so 1 HU is 4.9e-4 network units. Two fp32
 * implementations of an 11M-parameter convolutional network differ by rounding only (accumulation order, fused
 * kernels): about 1e-6..1e-5 in network units, hundredths of a HU. We require max |diff| < 1 HU (below the 1 HU
 * quantisation of the derived series' stored values) and mean |diff| < 0.1 HU; a wrong layer, padding mode, channel
 * order or intensity map gives differences of tens to thousands of HU.
 *
 * Needs /usr/bin/python3 with torch, onnx and numpy (scripts/install-system-deps.sh installs them): skipped with a
 * message where missing, a failure in CI. Run `npm run build` first (the inference worker runs from dist/).
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { assembleVolume } from "../../src/dicom/volume.js";
import { InferenceService } from "../../src/models/inference.js";
import { ModelRegistry } from "../../src/models/registry.js";
import { ctSeriesFiles, repoRoot, requireCtData, filesInPositionOrder } from "../helpers/ct-data.js";

const execFileAsync = promisify(execFile);
const PYTHON = "/usr/bin/python3";
const SLICES = 2;

function requirePythonTorch(): boolean {
  try {
    execFileSync(PYTHON, ["-c", "import torch, onnx, numpy"], { stdio: "ignore" });
    return true;
  } catch {
    const message = `${PYTHON} has no torch/onnx/numpy: run scripts/install-system-deps.sh (python3-torch python3-onnx python3-numpy)`;
    if (process.env.CI) throw new Error(`${message}; CI must have them`);
    console.warn(`skipping: ${message}`);
    return false;
  }
}


/** A float32 .npy (format 1.0, C order) of the given shape, for the export script's --reference-input. */
function npyFloat32(values: Float32Array, shape: number[]): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}), }`;
  const unpadded = 10 + dict.length + 1;
  const header = `${dict}${" ".repeat((64 - (unpadded % 64)) % 64)}\n`;
  const preamble = Buffer.alloc(10);
  preamble.write("\x93NUMPY", 0, "latin1");
  preamble.writeUInt8(1, 6);
  preamble.writeUInt8(0, 7);
  preamble.writeUInt16LE(header.length, 8);
  return Buffer.concat([preamble, Buffer.from(header, "latin1"), Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
}

const ready = requireCtData("lidc-idri-0002-ncct") && requirePythonTorch();

describe.runIf(ready)("an exported CTA-GAN generator runs unchanged through ct-enhance's inference path", () => {
  const folder = mkdtempSync(path.join(tmpdir(), "ctagan-export-"));
  const inference = new InferenceService("cpu", 2);

  afterAll(async () => {
    await inference.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it(`matches PyTorch on ${SLICES} real 512x512 slices within 1 HU (max) and 0.1 HU (mean)`, async () => {
    // Contiguous slices from the middle of the chest (lungs, mediastinum, spine): real HU from -1024 to bone.
    const files = filesInPositionOrder(ctSeriesFiles("lidc-idri-0002-ncct")).slice(130, 130 + SLICES);
    const volume = await assembleVolume(files.map((f) => new Uint8Array(readFileSync(f))), { minSlices: SLICES });
    expect([volume.slices, volume.rows, volume.columns]).toEqual([SLICES, 512, 512]);
    writeFileSync(path.join(folder, "input-hu.npy"), npyFloat32(volume.hu, [SLICES, 512, 512]));

    const started = performance.now();
    const { stdout } = await execFileAsync(
      PYTHON,
      [
        path.join(repoRoot, "training", "export_ctagan.py"),
        "--random-weights", "1",
        "--out", path.join(folder, "models"),
        "--id", "ctagan-test",
        "--reference-input", path.join(folder, "input-hu.npy"),
        "--threads", "2",
      ],
      { timeout: 150_000, maxBuffer: 1 << 20 },
    );
    const exported = JSON.parse(stdout) as { parameters: number; onnxBytes: number; exportSeconds: number; reference: { torchSecondsPerSlice: number } };
    const exportSeconds = (performance.now() - started) / 1000;
    expect(exported.parameters).toBe(11_365_633);

    const registry = await ModelRegistry.load(path.join(folder, "models"));
    const model = registry.get("ctagan-test");
    expect(model.manifest).toMatchObject({ task: "synthesis", input: { contextSlices: 1, size: [512, 512] }, output: { meaning: "hu-image" } });

    const inferStarted = performance.now();
    const result = await inference.run(model, { hu: volume.hu.slice(), slices: SLICES, rows: 512, columns: 512 }, "over-input");
    const ortSeconds = (performance.now() - inferStarted) / 1000;
    expect(result.provider).toBe("cpu");

    const bytes = readFileSync(path.join(folder, "models", "ctagan-test.reference-output-hu.bin"));
    const torchHu = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    expect(torchHu.length).toBe(result.output.length);
    let maxDiff = 0;
    let sumDiff = 0;
    let sumSpread = 0;
    for (let i = 0; i < torchHu.length; i += 1) {
      const d = Math.abs(result.output[i]! - torchHu[i]!);
      maxDiff = Math.max(maxDiff, d);
      sumDiff += d;
      sumSpread += Math.abs(torchHu[i]! - torchHu[(i + 7919) % torchHu.length]!);
    }
    const meanDiff = sumDiff / torchHu.length;
    console.log(
      `CTA-GAN export parity, onnxruntime-node vs PyTorch on ${SLICES} slices: max |diff| ${maxDiff.toFixed(4)} HU, ` +
        `mean |diff| ${meanDiff.toFixed(5)} HU; export + PyTorch ${exportSeconds.toFixed(1)} s ` +
        `(${exported.reference.torchSecondsPerSlice.toFixed(1)} s/slice), onnxruntime ${ortSeconds.toFixed(1)} s ` +
        `(${(ortSeconds / SLICES).toFixed(1)} s/slice), ONNX ${(exported.onnxBytes / 2 ** 20).toFixed(1)} MiB`,
    );
    // The output is not trivially constant (otherwise any mapping would agree): voxels differ by hundreds of HU.
    expect(sumSpread / torchHu.length).toBeGreaterThan(50);
    expect(maxDiff).toBeLessThan(1);
    expect(meanDiff).toBeLessThan(0.1);
  }, 240_000);
});
