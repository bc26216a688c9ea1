/**
 * From a detection model's probability map to findings: voxels above the manifest's threshold, grouped into 3D
 * connected components (26-connectivity), each measured in patient space (centroid, long axis on its largest slice,
 * volume) with the highest probability inside it as its confidence. Components smaller than a minimum volume are noise.
 */
import type { CtVolume } from "../dicom/ct-volume.js";
import type { CodedConcept, Finding } from "../dicom/finding.js";
import { voxelToPatient } from "../dicom/geometry.js";
import { longAxis } from "../dicom/long-axis.js";
import { deterministicUid } from "../dicom/uid.js";
import { nextTurn, turnTaker } from "../event-loop.js";

export interface FindingRules {
  threshold: number;
  /** Components below this volume are dropped, mm3. */
  minVolumeMm3: number;
  /** At most this many findings, the most probable first. */
  maxFindings: number;
  findingCode: CodedConcept;
  findingSiteCode: CodedConcept;
  /** The tracking UIDs are derived from this (e.g. the SR's series UID), so they are stable per output. */
  trackingNamespace: string;
  /** "Nodule" gives tracking identifiers "Nodule 1", "Nodule 2", ... */
  trackingLabel: string;
}

/** Voxels scanned, or taken by a component's flood fill, between two looks at the clock. */
const VOXELS_PER_CLOCK_CHECK = 1 << 16;

/**
 * Voxel indices of every 26-connected component of voxels above threshold. A whole 300-slice map takes ~0.2 s to
 * scan on a small CPU and one large component's flood fill ~0.1 s, so both give the event loop a turn every ~15 ms
 * and the API stays responsive meanwhile.
 */
async function components(probability: Float32Array, volume: CtVolume, threshold: number): Promise<Int32Array[]> {
  const { slices, rows, columns } = volume;
  const plane = rows * columns;
  const visited = new Uint8Array(probability.length);
  const found: Int32Array[] = [];
  let queue = new Int32Array(1024);
  const takeTurn = turnTaker();
  for (let chunkStart = 0; chunkStart < probability.length; chunkStart += VOXELS_PER_CLOCK_CHECK) {
    await takeTurn();
    const chunkEnd = Math.min(probability.length, chunkStart + VOXELS_PER_CLOCK_CHECK);
    for (let start = chunkStart; start < chunkEnd; start++) {
      // The probability first: the visited map is touched only near findings.
      if (!(probability[start]! > threshold) || visited[start]) continue;
      visited[start] = 1;
      queue[0] = start;
      let head = 0;
      let tail = 1;
      while (head < tail) {
        if (head % VOXELS_PER_CLOCK_CHECK === 0) await takeTurn();
        const index = queue[head++]!;
        const k = Math.floor(index / plane);
        const r = Math.floor((index % plane) / columns);
        const c = index % columns;
        for (let dk = -1; dk <= 1; dk++) {
          const kk = k + dk;
          if (kk < 0 || kk >= slices) continue;
          for (let dr = -1; dr <= 1; dr++) {
            const rr = r + dr;
            if (rr < 0 || rr >= rows) continue;
            for (let dc = -1; dc <= 1; dc++) {
              const cc = c + dc;
              if (cc < 0 || cc >= columns) continue;
              const neighbour = kk * plane + rr * columns + cc;
              if (visited[neighbour] || !(probability[neighbour]! > threshold)) continue;
              visited[neighbour] = 1;
              if (tail === queue.length) {
                const grown = new Int32Array(queue.length * 2);
                grown.set(queue);
                queue = grown;
              }
              queue[tail++] = neighbour;
            }
          }
        }
      }
      found.push(queue.slice(0, tail));
    }
  }
  return found;
}

export async function findingsFromProbability(probability: Float32Array, volume: CtVolume, rules: FindingRules): Promise<Finding[]> {
  const plane = volume.rows * volume.columns;
  const voxelMm3 = volume.pixelSpacing[0] * volume.pixelSpacing[1] * volume.sliceSpacing;
  const measured: Omit<Finding, "trackingId" | "trackingUid" | "findingCode" | "findingSiteCode">[] = [];
  const kept = (await components(probability, volume, rules.threshold)).filter((voxels) => voxels.length * voxelMm3 >= rules.minVolumeMm3);
  for (const voxels of kept) {
    await nextTurn(); // each component's measure (its longest diameter above all) is a few ms to tens of ms
    let peak = 0;
    let sk = 0;
    let sr = 0;
    let sc = 0;
    const bySlice = new Map<number, number[]>();
    for (const index of voxels) {
      const k = Math.floor(index / plane);
      const inPlane = index % plane;
      const r = Math.floor(inPlane / volume.columns);
      const c = inPlane % volume.columns;
      sk += k;
      sr += r;
      sc += c;
      peak = Math.max(peak, probability[index]!);
      const pixels = bySlice.get(k) ?? [];
      pixels.push(inPlane);
      bySlice.set(k, pixels);
    }
    const n = voxels.length;
    const mask = [...bySlice.entries()].sort(([a], [b]) => a - b).map(([slice, pixels]) => ({ slice, pixels }));
    measured.push({
      centroidPatientMm: voxelToPatient(volume, sk / n, sr / n, sc / n),
      mask,
      // The reader's long axis (in-plane, on the largest slice), the same line and figure the SR gives.
      longestDiameterMm: longAxis(mask, volume).lengthMm,
      volumeMm3: n * voxelMm3,
      probability: peak,
    });
  }
  measured.sort((a, b) => b.probability - a.probability).splice(rules.maxFindings);
  return numbered(measured.map((m) => ({ findingCode: rules.findingCode, findingSiteCode: rules.findingSiteCode, ...m })), rules);
}

/** Findings in the order given, tracked as "<label> 1", "<label> 2", ... with UIDs derived from the namespace. */
export function numbered(
  findings: readonly (Omit<Finding, "trackingId" | "trackingUid"> & Partial<Pick<Finding, "trackingId" | "trackingUid">>)[],
  rules: Pick<FindingRules, "trackingNamespace" | "trackingLabel">,
): Finding[] {
  return findings.map(({ trackingId: _id, trackingUid: _uid, ...f }, i) => ({
    trackingId: `${rules.trackingLabel} ${i + 1}`,
    trackingUid: deterministicUid("ct-enhance", "finding", rules.trackingNamespace, i + 1),
    ...f,
  }));
}
