/** What the node can do: its models, pipelines and schedules (which an operator can also run now). */
import { z } from "zod";
import { IntendedUse, OutputCheck } from "../../models/manifest.js";
import { SelectionRule } from "../../pipeline/rules.js";
import type { RouteDeps } from "../api-deps.js";
import { route, type Route } from "../route.js";
import { ErrorAnswer, ScheduleRunSchema, ScheduleSchema } from "../schemas.js";

export function catalogRoutes({ models, pipelines, schedules }: RouteDeps): Route[] {
  return [
    route({
      method: "get",
      path: "/models",
      summary: "Models: id, version, task, where each may run (intended use) and what its output must satisfy (checks)",
      answers: { 200: { description: "OK", schema: z.array(z.object({
        id: z.string(), version: z.string(), task: z.string(), name: z.string(), description: z.string(),
        intendedUse: IntendedUse, outputChecks: z.array(OutputCheck),
      })) } },
      handle(_input, response) {
        response.json((models?.list() ?? []).map(({ manifest }) => ({
          id: manifest.id, version: manifest.version, task: manifest.task, name: manifest.name, description: manifest.description,
          intendedUse: manifest.intendedUse, outputChecks: manifest.outputChecks,
        })));
      },
    }),
    route({
      method: "get",
      path: "/pipelines",
      summary: "Pipelines and their selection rules",
      answers: { 200: { description: "OK", schema: z.array(z.object({
        id: z.string(), description: z.string(), model: z.string(), outputLabel: z.string(), enabled: z.boolean(), select: SelectionRule,
      })) } },
      handle(_input, response) {
        response.json((pipelines ?? []).map((p) => ({
          id: p.id, description: p.description, model: p.model, outputLabel: p.outputLabel, enabled: p.enabled, select: p.select,
        })));
      },
    }),
    route({
      method: "get",
      path: "/schedules",
      summary: "Schedules (reconcile, retry, retention): cron, next and last run",
      answers: { 200: { description: "OK", schema: z.array(ScheduleSchema) } },
      handle(_input, response) {
        response.json(schedules?.list() ?? []);
      },
    }),
    route({
      method: "post",
      path: "/schedules/:name/run",
      summary: "Run a schedule now and wait for its outcome",
      params: z.object({ name: z.string().describe("reconcile, retry or retention") }),
      answers: { 200: { description: "the run's outcome", schema: ScheduleRunSchema }, 404: { description: "no such schedule", schema: ErrorAnswer } },
      async handle({ params }, response) {
        if (!schedules?.has(params.name)) {
          response.status(404).json({ error: `no schedule '${params.name}' (known: ${(schedules?.list() ?? []).map((s) => s.name).join(", ")})` });
          return;
        }
        response.json(await schedules.run(params.name));
      },
    }),
  ];
}
