/**
 * The small part of dcmjs (0.51) that ct-enhance uses; dcmjs ships no types.
 * A "dataset" is the DICOM JSON model keyed by 8-hex-digit tags; a "naturalized" dataset is keyed by keyword.
 */
declare module "dcmjs" {
  export namespace data {
    interface DicomElement {
      vr: string;
      Value?: unknown[];
    }
    type DicomDataset = Record<string, DicomElement>;
    /** Keyword-keyed dataset; `_vrMap` records VRs the dictionary cannot tell (e.g. PixelData OB/OW). */
    type NaturalDataset = Record<string, unknown> & { _vrMap?: Record<string, string> };

    interface ReadFileOptions {
      ignoreErrors?: boolean;
      /** Stop reading at this tag ("7FE00010"), 8 hex digits, upper case. */
      untilTag?: string | null;
      includeUntilTagValue?: boolean;
      noCopy?: boolean;
      forceStoreRaw?: boolean;
    }

    interface WriteOptions {
      allowInvalidVRLength?: boolean;
      fragmentMultiframe?: boolean;
    }

    class DicomDict {
      constructor(meta: DicomDataset);
      meta: DicomDataset;
      dict: DicomDataset;
      write(options?: WriteOptions): ArrayBuffer;
    }

    class DicomMessage {
      static readFile(buffer: ArrayBuffer, options?: ReadFileOptions): DicomDict;
      /** Writes the dataset's elements (sorted by tag) to the stream; returns the bytes written. */
      static write(dataset: DicomDataset, stream: WriteBufferStream, transferSyntaxUID: string, options: WriteOptions): number;
    }

    class WriteBufferStream {
      constructor(initialSize?: number, littleEndian?: boolean);
      /** The bytes written so far. */
      getBuffer(): ArrayBuffer;
    }

    class DicomMetaDictionary {
      static naturalizeDataset(dataset: DicomDataset): NaturalDataset;
      static denaturalizeDataset(dataset: NaturalDataset): DicomDataset;
    }
  }

  /** A loglevel logger (dcmjs bundles loglevel 1.x). getLevel: 0 trace .. 4 error, 5 silent. */
  interface Logger {
    setLevel(level: "trace" | "debug" | "info" | "warn" | "error" | "silent"): void;
    getLevel(): number;
  }

  /** The root logger; `getLogger(name)` returns the named one, the same object each time. */
  export const log: Logger & { getLogger(name: string): Logger };
}
