declare module "parse-prometheus-text-format" {
  /** Metric families of a Prometheus text exposition (only what the tests read). */
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
