// What each domain's metrics mean on screen: which figure of a bucket to show
// (docs/architecture.md, "Areas": counts add up, rates average, gauges take the last
// value) and how many decimals. The first metric of a domain is its chart's default.

export const DOMAINS = ["traffic", "hospital", "school", "security"];

/** Per metric: `stat` of a series point or of an overview minute, and decimals. */
export const METRICS = {
  vehicles: { stat: "sum", digits: 0 },
  avg_speed_kmh: { stat: "avg", digits: 1 },
  occupancy_pct: { stat: "avg", digits: 1 },
  incidents: { stat: "sum", digits: 0 },
  lanes_blocked: { stat: "max", digits: 0 },
  bed_occupancy_pct: { stat: "avg", digits: 1 },
  icu_occupancy_pct: { stat: "avg", digits: 1 },
  er_waiting: { stat: "last", digits: 0 },
  ambulances_available: { stat: "last", digits: 0 },
  admissions: { stat: "sum", digits: 0 },
  admissions_urgent: { stat: "sum", digits: 0 },
  attendance_pct: { stat: "avg", digits: 1 },
  present: { stat: "last", digits: 0 },
  safety_reports: { stat: "sum", digits: 0 },
  detections: { stat: "sum", digits: 0 },
  detected_count: { stat: "sum", digits: 0 },
  confidence: { stat: "max", digits: 2 },
  intrusion_confidence: { stat: "max", digits: 2 },
  alarms: { stat: "sum", digits: 0 },
};

/** Metrics of each domain, the chart's default first. */
export const DOMAIN_METRICS = {
  traffic: ["vehicles", "avg_speed_kmh", "occupancy_pct", "incidents"],
  hospital: ["bed_occupancy_pct", "er_waiting", "ambulances_available", "icu_occupancy_pct", "admissions"],
  school: ["attendance_pct", "present", "safety_reports"],
  security: ["detections", "confidence", "alarms"],
};

/** The two figures of a domain's overview tile. */
export const TILE_METRICS = {
  traffic: ["vehicles", "avg_speed_kmh"],
  hospital: ["bed_occupancy_pct", "er_waiting"],
  school: ["attendance_pct", "present"],
  security: ["detections", "alarms"],
};

export function metricInfo(metric) {
  return METRICS[metric] || { stat: "avg", digits: 2 };
}

/** The value of an overview minute (`MetricSummary`) for a tile: gauges sum each entity's
 * last value, counts add up, rates average. */
export function tileValue(metric, summary) {
  const { stat } = metricInfo(metric);
  if (!summary) return null;
  if (stat === "last") return summary.last_sum;
  if (stat === "sum") return summary.sum;
  if (stat === "max") return summary.max;
  return summary.avg;
}
