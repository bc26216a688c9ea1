/**
 * The `eval` command's options: its usage and help text, and the parsing parseArgs leaves to us (negative numbers,
 * HU regions, the SSIM window), each refusal a ConfigError naming the option.
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../config.js";
import { DEFAULT_BODY_THRESHOLD_HU } from "../measure/body-mask.js";
import { DEFAULT_HU_RANGE, type HuRange, type HuRegion } from "./image-metrics.js";
import { DEFAULT_SSIM_WINDOW, SSIM_WINDOWS, type SsimWindow } from "./ssim.js";

export const EVAL_USAGE =
  "ct-enhance eval --reference <folder | Orthanc series ID | SeriesInstanceUID> --candidate <same> " +
  "[--hu-min -1024] [--hu-max 3071] [--ssim-window uniform7|gaussian11] [--body-mask] [--body-threshold -500] " +
  "[--exclude-background] [--region NAME=LO:HI ...] [--per-slice-csv FILE] [--json] [--config FILE]";

export const EVAL_HELP = `NMAE, MAE, PSNR and SSIM of a candidate series against a reference series (definitions: src/eval/image-metrics.ts).
  --hu-min, --hu-max       both series clipped to this HU range first; R = hu-max - hu-min (default -1024, 3071)
  --ssim-window            uniform7 (default: skimage's default window, as in RegGAN's and CTA-GAN's compare_ssim)
                           or gaussian11 (skimage gaussian_weights=True, sigma 1.5); on slices scaled to [-1, 1]
  --body-mask              count only the reference's body (> --body-threshold HU, largest component, holes filled)
  --exclude-background     NMAE, MAE, PSNR leave out voxels where the reference is at or below --hu-min (RegGAN)
  --region NAME=LO:HI      also report the voxels whose REFERENCE HU is in [LO, HI), e.g. bloodpool=150:600 on a
                           real CTA, tissue=-100:150; LO or HI may be left empty (no bound); repeatable
  --per-slice-csv FILE     every slice's figures, in position order
  --json                   the report as JSON
Figures: per volume (all counted voxels pooled) and per slice (each slice's figures, then their mean: the papers').`;

const NUMERIC_OPTIONS = new Set(["--hu-min", "--hu-max", "--body-threshold"]);

/** `--hu-min -1024` as `--hu-min=-1024`: parseArgs would take "-1024" for an option. */
function joinNegativeNumbers(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const next = argv[i + 1];
    if (NUMERIC_OPTIONS.has(argv[i]!) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i += 1;
    } else {
      out.push(argv[i]!);
    }
  }
  return out;
}

function numberOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) throw new ConfigError(`--${name} '${text}' is not a number`);
  return value;
}

const REGION = /^([A-Za-z][\w-]*)=([^:]*):([^:]*)$/;

/** `NAME=LO:HI` (HU; an empty end is unbounded) as a region of the reference's HU, [LO, HI). */
export function parseRegion(text: string): HuRegion {
  const match = REGION.exec(text);
  const bound = (value: string, open: number): number => {
    if (value.trim() === "") return open;
    const number = Number(value);
    if (!Number.isFinite(number)) throw new ConfigError(`--region '${text}': '${value}' is not a number of HU`);
    return number;
  };
  if (!match) {
    throw new ConfigError(`--region '${text}' is not NAME=LO:HI (HU of the reference, e.g. bloodpool=150:600)`);
  }
  const region = { name: match[1]!, loHu: bound(match[2]!, -Infinity), hiHu: bound(match[3]!, Infinity) };
  if (!(region.hiHu > region.loHu)) throw new ConfigError(`--region '${text}': HI must exceed LO`);
  return region;
}

export interface EvalOptions {
  reference: string;
  candidate: string;
  range: HuRange;
  ssimWindow: SsimWindow;
  /** Set when the body mask is asked for (--body-mask or --body-threshold). */
  bodyMaskThresholdHu?: number;
  excludeBackground: boolean;
  regions: HuRegion[];
  perSliceCsv?: string;
  json: boolean;
  config?: string;
}

/** The command line as options ("help" for --help); refuses what cannot be measured, naming the option. */
export function parseEvalOptions(argv: string[]): EvalOptions | "help" {
  const { values } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: {
      reference: { type: "string" },
      candidate: { type: "string" },
      "hu-min": { type: "string" },
      "hu-max": { type: "string" },
      "ssim-window": { type: "string" },
      "body-mask": { type: "boolean", default: false },
      "body-threshold": { type: "string" },
      "exclude-background": { type: "boolean", default: false },
      region: { type: "string", multiple: true },
      "per-slice-csv": { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      config: { type: "string" },
    },
  });
  if (values.help) return "help";
  if (!values.reference || !values.candidate) {
    throw new ConfigError(`eval needs --reference and --candidate\nusage: ${EVAL_USAGE}\n${EVAL_HELP}`);
  }
  const range = {
    huMin: numberOption("hu-min", values["hu-min"], DEFAULT_HU_RANGE.huMin),
    huMax: numberOption("hu-max", values["hu-max"], DEFAULT_HU_RANGE.huMax),
  };
  if (range.huMax <= range.huMin) throw new ConfigError(`--hu-max ${range.huMax} must exceed --hu-min ${range.huMin}`);
  const window = values["ssim-window"] ?? DEFAULT_SSIM_WINDOW;
  if (!(SSIM_WINDOWS as readonly string[]).includes(window)) {
    throw new ConfigError(`--ssim-window '${window}' is not one of ${SSIM_WINDOWS.join(", ")}`);
  }
  const regions = (values.region ?? []).map(parseRegion);
  const names = regions.map((r) => r.name);
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated) throw new ConfigError(`--region ${repeated} is given twice`);
  const threshold = numberOption("body-threshold", values["body-threshold"], DEFAULT_BODY_THRESHOLD_HU);
  return {
    reference: values.reference,
    candidate: values.candidate,
    range,
    ssimWindow: window as SsimWindow,
    ...(values["body-mask"] || values["body-threshold"] !== undefined ? { bodyMaskThresholdHu: threshold } : {}),
    excludeBackground: values["exclude-background"],
    regions,
    ...(values["per-slice-csv"] ? { perSliceCsv: values["per-slice-csv"] } : {}),
    json: values.json,
    ...(values.config ? { config: values.config } : {}),
  };
}
