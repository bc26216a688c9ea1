/**
 * One way to declare an API route: its method and path, zod schemas for its path parameters, query and body, and
 * what it answers. The same declaration validates each request (a bad one gets 400 naming the field) and writes the
 * route's OpenAPI entry, so the description served at /openapi.json cannot drift from what the routes accept.
 */
import type { NextFunction, Request, RequestHandler, Response, Router } from "express";
import { z } from "zod";

export interface RouteAnswer {
  description: string;
  /** The JSON body's schema; a content type other than JSON is named instead. */
  schema?: z.ZodType;
  contentType?: "image/png" | "text/plain";
}

type Schema = z.ZodObject<z.ZodRawShape>;
type Parsed<S> = S extends z.ZodType ? z.infer<S> : Record<string, never>;

export interface Route<P extends Schema | undefined = Schema | undefined, Q extends Schema | undefined = Schema | undefined,
  B extends Schema | undefined = Schema | undefined> {
  method: "get" | "post";
  /** Express syntax (/jobs/:id); the OpenAPI path is written /jobs/{id}. */
  path: string;
  summary: string;
  /** false for the probes and this description: answered without the bearer token. Default true. */
  auth?: boolean;
  params?: P;
  query?: Q;
  body?: B;
  answers: Record<number, RouteAnswer>;
  handle(input: { params: Parsed<P>; query: Parsed<Q>; body: Parsed<B> }, response: Response): void | Promise<void>;
}

/** Declares a route (the identity, for type inference). */
export function route<P extends Schema | undefined, Q extends Schema | undefined, B extends Schema | undefined>(
  declaration: Route<P, Q, B>,
): Route {
  return declaration as unknown as Route;
}

/** The request's part as the schema reads it, or the first problem in words ("query.limit: ..."). */
function parse(schema: Schema | undefined, value: unknown, part: string): { ok: true; data: unknown } | { ok: false; error: string } {
  if (!schema) return { ok: true, data: {} };
  const result = schema.safeParse(value ?? {});
  if (result.success) return { ok: true, data: result.data };
  const issue = result.error.issues[0]!;
  return { ok: false, error: `${[part, ...issue.path.map(String)].join(".")}: ${issue.message}` };
}

/**
 * Mounts each route on the router, behind `requireToken` unless it says auth: false; a POST reads its body with
 * `readBody` after the token check.
 */
export function mountRoutes(router: Router, routes: readonly Route[], requireToken: RequestHandler, readBody: RequestHandler): void {
  for (const declared of routes) {
    const handler = (request: Request, response: Response, next: NextFunction): void => {
      const parts = [
        parse(declared.params, request.params, "path"),
        parse(declared.query, request.query, "query"),
        parse(declared.body, request.body, "body"),
      ] as const;
      const bad = parts.find((p) => !p.ok);
      if (bad && !bad.ok) {
        response.status(400).json({ error: bad.error });
        return;
      }
      const [params, query, body] = parts.map((p) => (p.ok ? p.data : undefined));
      Promise.resolve(declared.handle({ params, query, body } as never, response)).catch(next);
    };
    const guards = declared.auth === false ? [] : [requireToken];
    const body = declared.method === "post" ? [readBody] : [];
    router[declared.method](declared.path, ...guards, ...body, handler);
  }
}

function jsonSchema(schema: z.ZodType, io: "input" | "output"): object {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
}

function parameters(schema: Schema | undefined, where: "path" | "query"): object[] {
  if (!schema) return [];
  return Object.entries(schema.shape).map(([name, field]) => {
    const type = field as z.ZodType;
    return {
      name,
      in: where,
      required: where === "path" || !type.safeParse(undefined).success,
      ...(type.description ? { description: type.description } : {}),
      schema: jsonSchema(type, "input"),
    };
  });
}

/** The OpenAPI 3.1 `paths` object of the routes. */
export function openApiPaths(routes: readonly Route[]): Record<string, Record<string, object>> {
  const paths: Record<string, Record<string, object>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z]+)/g, "{$1}");
    const answers = Object.fromEntries(Object.entries(r.answers).map(([status, answer]) => [status, {
      description: answer.description,
      ...(answer.contentType
        ? { content: { [answer.contentType]: {} } }
        : answer.schema ? { content: { "application/json": { schema: jsonSchema(answer.schema, "output") } } } : {}),
    }]));
    (paths[path] ??= {})[r.method] = {
      summary: r.summary,
      ...(r.auth === false ? { security: [] } : {}),
      parameters: [...parameters(r.params, "path"), ...parameters(r.query, "query")],
      ...(r.body ? { requestBody: { content: { "application/json": { schema: jsonSchema(r.body, "input") } } } } : {}),
      responses: answers,
    };
  }
  return paths;
}
