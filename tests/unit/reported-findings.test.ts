import { describe, expect, it } from "vitest";
import { writeFindingsInstances } from "../../src/dicom/findings-instances.js";
import { voxelToPatient } from "../../src/dicom/geometry.js";
import { maskCentroid } from "../../src/models/candidate-patches.js";
import { ReportReadError, reportedFindings } from "../../src/dicom/reported-findings.js";
import { LUNG, MASS, NODULE } from "../../src/dicom/sr/codes.js";
import { findingSummary } from "../../src/pipeline/outputs/findings.js";
import { ALGORITHM, SEG_IDENTITY, SR_IDENTITY, syntheticVolume, twoFindings } from "../helpers/sr-fixtures.js";

/**
 * SR and SEG as the writers make them: two findings (the second reported as a mass), rows and columns spaced apart,
 * a matrix of 61 x 63 (frames that end inside a byte, so a reader that pads each frame to a byte shows), oblique.
 */
function written(withFindings = true) {
  const volume = syntheticVolume();
  volume.pixelSpacing = [0.7, 0.9]; // unequal, so a row/column swap in the reader shows
  volume.rows = 61;
  volume.columns = 63;
  volume.hu = new Float32Array(volume.rows * volume.columns * volume.slices).fill(-800);
  const tilt = Math.SQRT1_2;
  volume.imageOrientationPatient = [tilt, tilt, 0, 0, 0, -1]; // rows along x+y, columns down -z: oblique
  volume.imagePositionPatient = volume.imagePositionPatient.map((_, k) => [-22.4 - k * 1.25 * tilt, -180.4 + k * 1.25 * tilt, -150]);
  // Each centroid as the detector places it (probability-findings.ts): the patient position of the mask's mean voxel.
  const findings = (withFindings ? twoFindings(volume) : []).map((f) => {
    const mean = maskCentroid(f, volume.columns);
    return { ...f, centroidPatientMm: voxelToPatient(volume, mean.slice, mean.row, mean.column) };
  });
  if (withFindings) findings[1] = { ...findings[1]!, trackingId: "Mass 2", findingCode: MASS };
  const instances = writeFindingsInstances({
    volume, findings, algorithm: ALGORITHM, sr: SR_IDENTITY, ...(withFindings ? { seg: SEG_IDENTITY } : {}), searchedFor: NODULE, searchedSite: LUNG,
  });
  return { findings, sr: instances.at(-1)!, seg: withFindings ? instances[0]! : undefined };
}

describe("findings read back from a stored SR and SEG", () => {
  it("tells each finding as the job that stored them told it: identifiers, codes, size, certainty, centroid", async () => {
    const { findings, sr, seg } = written();
    const read = await reportedFindings(sr, async () => seg);
    expect(read.map(findingSummary)).toEqual(findings.map(findingSummary));
    expect(read.map((f) => f.findingCode.meaning)).toEqual(["Nodule", "Mass"]);
  });

  it("reads a report of no finding without asking for a segmentation", async () => {
    const { sr } = written(false);
    let asked = false;
    const read = await reportedFindings(sr, async () => { asked = true; return undefined; });
    expect(read).toEqual([]);
    expect(asked).toBe(false);
  });

  it("refuses, saying what is missing, a report whose segmentation is not stored, or bytes that are not DICOM", async () => {
    const { sr } = written();
    await expect(reportedFindings(sr, async () => undefined)).rejects.toThrow(ReportReadError);
    await expect(reportedFindings(sr, async () => undefined)).rejects.toThrow(/2 finding\(s\) but its segmentation is not stored/);
    await expect(reportedFindings(new Uint8Array(64), async () => undefined)).rejects.toThrow(/stored report is not a readable DICOM file/);
  });

  it("refuses a segmentation that lacks a finding's segment", async () => {
    const { sr } = written();
    const other = written();
    const oneSegment = writeFindingsInstances({
      volume: syntheticVolume(), findings: other.findings.slice(0, 1), algorithm: ALGORITHM, sr: SR_IDENTITY, seg: SEG_IDENTITY, searchedFor: NODULE, searchedSite: LUNG,
    })[0]!;
    await expect(reportedFindings(sr, async () => oneSegment)).rejects.toThrow(/Mass 2: segment 2 has no voxels/);
  });
});
