/**
 * Request bodies: JSON only, read after the token check (a caller without the token never gets a body parsed), and
 * at most BODY_LIMIT_BYTES; a larger one is answered 413 before it is read in full. The largest body a route takes
 * ({"pipeline", "force", "requestedBy"} of a re-run) is well under 1 KiB.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";

export const BODY_LIMIT_BYTES = 16 * 1024;

export const readJsonBody: RequestHandler = express.json({ limit: BODY_LIMIT_BYTES });

/** The answer to a body over the limit (body-parser marks its error entity.too.large, status 413). */
export function bodyTooLarge(error: unknown, _request: Request, response: Response, next: NextFunction): void {
  if ((error as { type?: unknown }).type !== "entity.too.large") return next(error);
  response.status(413).json({ error: `request body over ${BODY_LIMIT_BYTES} bytes` });
}
