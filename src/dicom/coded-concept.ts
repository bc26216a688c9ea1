/** A code triplet, as DICOM's Code Sequence Macro carries it (PS3.3 Table 8.8-1). */
export interface CodedConcept {
  value: string;
  /** Coding Scheme Designator: "DCM", "SCT", "UCUM", ... */
  scheme: string;
  meaning: string;
}

/** The Code Sequence Macro item of a concept. */
export function codeSequenceItem(code: CodedConcept): Record<string, string> {
  return { CodeValue: code.value, CodingSchemeDesignator: code.scheme, CodeMeaning: code.meaning };
}
