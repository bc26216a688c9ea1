#!/usr/bin/env node
/**
 * ct-enhance command line:
 *   ct-enhance serve [--config FILE]                       follow Orthanc and process new series by themselves
 *   ct-enhance worker [--config FILE]                      take jobs from the Redis queue (distributed mode)
 *   ct-enhance run --series ID|UID [--pipeline NAME] [--force] [--config FILE]
 *                                                          process one series once, now, and print the outcome
 *   ct-enhance models [--config FILE]                      list models and pipelines
 *   ct-enhance eval --reference S --candidate S [...]      NMAE, PSNR, SSIM of one series against another
 *   ct-enhance probe <series>                              what the anatomy probe measures in a series
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config.js";
import { EVAL_USAGE, runEvalCommand } from "./eval/eval-command.js";
import { PROBE_USAGE, runProbeCommand } from "./eval/probe-command.js";
import { JobState, type Job } from "./jobs/job-records.js";
import { logger } from "./log.js";
import { redact } from "./redact.js";
import { runJob, type PipelineContext } from "./pipeline/runner.js";
import { selectSeries } from "./pipeline/select-series.js";
import { startWorker } from "./service/queue-worker.js";
import { openContext, startService } from "./service/service.js";

const log = logger("cli");
const USAGE = `usage:
  ct-enhance serve [--config FILE]
  ct-enhance worker [--config FILE]          (needs CT_ENHANCE_REDIS_URL)
  ct-enhance run --series <Orthanc series ID | SeriesInstanceUID> [--pipeline NAME] [--force] [--config FILE]
  ct-enhance models [--config FILE]
  ${EVAL_USAGE}
  ${PROBE_USAGE}`;

const ORTHANC_ID = /^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/;

async function resolveSeries(ctx: PipelineContext, series: string): Promise<string> {
  if (ORTHANC_ID.test(series)) return series;
  const id = await ctx.orthanc.seriesIdOf(series);
  if (!id) throw new Error(`Orthanc has no series with SeriesInstanceUID ${series}`);
  return id;
}

/**
 * Jobs of this series to run now; with force, jobs are made or re-queued as a new run that goes past the rules, the
 * model's intended use and its output checks (the output's DICOM then says which).
 */
async function jobsToRun(ctx: PipelineContext, orthancId: string, pipeline: string | undefined, force: boolean): Promise<Job[]> {
  const only = pipeline ? { pipeline } : undefined;
  if (pipeline && !ctx.pipelines.some((p) => p.id === pipeline)) {
    throw new Error(`no pipeline '${pipeline}' (known: ${ctx.pipelines.map((p) => p.id).join(", ")})`);
  }
  const outcome = await selectSeries(orthancId, ctx, only);
  if (!outcome.exists) throw new Error(`Orthanc has no series ${orthancId}`);
  const series = await ctx.orthanc.series(orthancId);
  const seriesUid = series?.MainDicomTags.SeriesInstanceUID ?? "";
  const jobs = ctx.ledger.jobs.list({ sourceSeriesUid: seriesUid }).filter((j) => !pipeline || j.pipeline === pipeline);
  if (!force) return jobs.filter((j) => j.state === JobState.Queued || j.state === JobState.RetryWait);
  const study = series ? await ctx.orthanc.study(series.ParentStudy) : undefined;
  return ctx.pipelines.filter((p) => !pipeline || p.id === pipeline).map((p) => {
    const model = ctx.models.get(p.model).manifest;
    const existing = jobs.find((j) => j.pipeline === p.id && j.modelVersion === model.version);
    if (existing) {
      const why = "run --force from the command line";
      if (existing.state === JobState.Queued) ctx.ledger.jobs.forceQueued(existing.id, why);
      else ctx.ledger.jobs.requeue(existing.id, why, true);
      return ctx.ledger.jobs.get(existing.id)!;
    }
    return ctx.ledger.jobs.create({
      sourceOrthancId: orthancId,
      sourceSeriesUid: seriesUid,
      studyUid: study?.MainDicomTags.StudyInstanceUID ?? "",
      pipeline: p.id,
      modelId: model.id,
      modelVersion: model.version,
    }, { forced: true }).job;
  });
}

async function runOnce(configFile: string | undefined, series: string, pipeline: string | undefined, force: boolean): Promise<number> {
  const ctx = await openContext(loadConfig(configFile));
  try {
    const orthancId = await resolveSeries(ctx, series);
    const jobs = await jobsToRun(ctx, orthancId, pipeline, force);
    if (jobs.length === 0) {
      const decisions = ctx.ledger.feed.decisions({ orthancSeriesId: orthancId }).slice(-ctx.pipelines.length);
      process.stdout.write(`${JSON.stringify({ series: orthancId, processed: [], decisions }, null, 2)}\n`);
      return 0;
    }
    const finished: Job[] = [];
    for (const job of jobs) finished.push(await runJob(ctx, job));
    process.stdout.write(`${JSON.stringify({ series: orthancId, processed: finished }, null, 2)}\n`);
    // Skipped (outside a model's intended use) is the node doing its job; failed and rejected need a person.
    return finished.every((j) => j.state === JobState.Done || j.state === JobState.Skipped) ? 0 : 1;
  } finally {
    await ctx.inference.close();
    ctx.ledger.close();
  }
}

async function listModels(configFile: string | undefined): Promise<number> {
  const ctx = await openContext(loadConfig(configFile));
  const models = ctx.models.list().map(({ manifest }) => ({
    id: manifest.id, version: manifest.version, task: manifest.task, name: manifest.name,
    intendedUse: manifest.intendedUse, outputChecks: manifest.outputChecks,
  }));
  const pipelines = ctx.pipelines.map((p) => ({ id: p.id, model: p.model, enabled: p.enabled, description: p.description }));
  process.stdout.write(`${JSON.stringify({ models, pipelines }, null, 2)}\n`);
  ctx.ledger.close();
  return 0;
}

async function serve(configFile: string | undefined): Promise<number> {
  const service = await startService(loadConfig(configFile));
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string): void => {
      log.info("stopping", { signal });
      void service.stop().then(resolve);
    };
    process.once("SIGINT", () => shutdown("SIGINT"));
    process.once("SIGTERM", () => shutdown("SIGTERM"));
  });
  return 0;
}

/** A worker of the distributed mode, until SIGINT or SIGTERM (it finishes the job in hand first). */
async function work(configFile: string | undefined): Promise<number> {
  const config = loadConfig(configFile);
  if (!config.queue.redisUrl) throw new ConfigError("worker needs config key queue.redisUrl (env CT_ENHANCE_REDIS_URL)");
  const worker = await startWorker(config);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string): void => {
      log.info("worker stopping after the job in hand", { signal, worker: worker.name });
      void worker.stop().then(resolve);
    };
    process.once("SIGINT", () => shutdown("SIGINT"));
    process.once("SIGTERM", () => shutdown("SIGTERM"));
  });
  return 0;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "eval") return runEvalCommand(argv.slice(1)); // its own options
  if (argv[0] === "probe") return runProbeCommand(argv.slice(1));
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      series: { type: "string" },
      pipeline: { type: "string" },
      force: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return command || values.help ? 0 : 2;
  }
  switch (command) {
    case "serve":
      return serve(values.config);
    case "worker":
      return work(values.config);
    case "run":
      if (!values.series) throw new ConfigError("run needs --series <Orthanc series ID or SeriesInstanceUID>");
      return runOnce(values.config, values.series, values.pipeline, values.force);
    case "models":
      return listModels(values.config);
    default:
      process.stderr.write(`unknown command '${command}'\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`ct-enhance: ${redact(message)}\n`);
    process.exitCode = error instanceof ConfigError ? 2 : 1;
  },
);
