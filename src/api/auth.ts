/** Bearer-token check for the API (constant-time compare). An empty token means an open API (loopback only). */
import type { NextFunction, Request, Response } from "express";
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (text: string): Buffer => createHash("sha256").update(text).digest();

export function requireToken(token: string) {
  const expected = digest(`Bearer ${token}`);
  return (request: Request, response: Response, next: NextFunction): void => {
    if (!token) return next();
    const given = request.headers.authorization;
    if (given && timingSafeEqual(digest(given), expected)) return next();
    response.status(401).set("WWW-Authenticate", 'Bearer realm="ct-enhance"')
      .json({ error: "missing or wrong bearer token: send Authorization: Bearer <CT_ENHANCE_API_TOKEN>" });
  };
}
