import { describe, expect, it } from "vitest";
import { encodeFindingsInstances, type FindingsInstancesInput, portableFindingsInput, writeFindingsInstances } from "../../src/dicom/findings-instances.js";
import { LUNG, NODULE } from "../../src/dicom/sr/codes.js";
import { ALGORITHM, dcmjsParsed, readNaturalized, SEG_IDENTITY, SR_IDENTITY, syntheticVolume, twoFindings } from "../helpers/sr-fixtures.js";

/** The synthetic volume whose first header is dcmjs-parsed (person names with accessors), as the service has it. */
function input(withFindings: boolean): FindingsInstancesInput {
  const volume = syntheticVolume();
  volume.sliceHeaders[0] = dcmjsParsed({ ...volume.sliceHeaders[0], ReferringPhysicianName: "Roe^Rick" });
  return {
    volume,
    findings: withFindings ? twoFindings(volume) : [],
    algorithm: ALGORITHM,
    sr: SR_IDENTITY,
    ...(withFindings ? { seg: SEG_IDENTITY } : {}),
    searchedFor: NODULE,
    searchedSite: LUNG,
  };
}

describe("SEG and SR encoded in a worker thread", () => {
  it("gives the same bytes as encoding on the calling thread, person names included", async () => {
    const same = input(true);
    expect(() => structuredClone(same.volume.sliceHeaders[0])).toThrow(); // why the header is made plain first
    const onThread = writeFindingsInstances(same);
    const inWorker = await encodeFindingsInstances(same);
    expect(inWorker).toHaveLength(2);
    expect(Buffer.from(inWorker[0]!).equals(Buffer.from(onThread[0]!))).toBe(true);
    expect(Buffer.from(inWorker[1]!).equals(Buffer.from(onThread[1]!))).toBe(true);
    const sr = readNaturalized(inWorker[1]!);
    expect(JSON.stringify(sr.PatientName)).toContain("Synthetic^Phantom");
    expect(JSON.stringify(sr.ReferringPhysicianName)).toContain("Roe^Rick");
    expect(readNaturalized(inWorker[0]!).Modality).toBe("SEG");
  });

  it("writes the SR alone when nothing was found", async () => {
    const instances = await encodeFindingsInstances(input(false));
    expect(instances).toHaveLength(1);
    expect(readNaturalized(instances[0]!).Modality).toBe("SR");
  });

  it("sends no voxels and one plain header across", () => {
    const portable = portableFindingsInput(input(true));
    expect(portable.volume.hu).toHaveLength(0);
    expect(portable.volume.sliceHeaders).toHaveLength(1);
    expect(() => structuredClone(portable)).not.toThrow();
  });

  it("rejects with the writer's own reason when the input is wrong", async () => {
    const wrong = input(true);
    wrong.findings[0]!.mask[0]!.slice = 99;
    await expect(encodeFindingsInstances(wrong)).rejects.toThrow(/outside the volume/);
  });
});
