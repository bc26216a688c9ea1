/** The intended use and output checks a test manifest needs (the schema refuses one without): any CT, open checks. */
export const ANY_CT = {
  intendedUse: {
    description: "any CT (test)", modality: "CT", regions: ["head", "chest", "abdomen"],
    sliceThicknessMm: { min: 0.1, max: 20 }, pixelSpacingMm: { min: 0.1, max: 5 }, matrix: { min: 8, max: 4096 }, contrast: "any",
  },
  outputChecks: [{ measure: "bodyVoxelsChangedPercent", overHu: 100, max: 100 }],
} as const;
