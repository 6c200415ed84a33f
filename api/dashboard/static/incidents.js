// The incidents panel: the incidents on screens (open or acknowledged) from the feed's
// snapshot, kept up to date by its `incident` messages: the incident tier's transitions
// (`open`, `update`, `close`, `retract`, newer `updated_at` wins) and operators' actions
// from any screen (`acknowledge`, `assign`, `resolve`, `merge`; `annotate` and `step`
// change nothing listed here). Newest opened first; a click opens the incident's panel.

import { formatTime, t } from "./i18n.js";

/** Items drawn at most; the count above the list tells how many there are. */
const SHOWN = 100;
/** Tries of a read of an incident the database does not hold yet (about 4.5 s in all). */
export const STORE_RETRIES = 6;
const ON_SCREEN = new Set(["open", "acknowledged"]);
/** What the incident tier's transitions set (the rest is operators'). */
const CORRELATED = ["severity", "updated_at", "closed_at", "title_en", "title_vi"];

function node(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** `fn()`, tried again for a few seconds while it fails with a 404: the feed can announce
 * an incident a moment before the sink has stored it. */
export async function whenStored(fn) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fn();
    } catch (error) {
      if (error.status !== 404 || attempt >= STORE_RETRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, 300 * attempt));
    }
  }
}

export function incidentTitle(incident) {
  return document.documentElement.lang === "en" ? incident.title_en : incident.title_vi || incident.title_en;
}

export class IncidentBoard {
  /**
   * @param {{list: HTMLElement, empty: HTMLElement, count: HTMLElement, announce: HTMLElement,
   *          read: (id: string) => Promise<object>,
   *          query: (params: object) => Promise<{items: object[]}>,
   *          open: (id: string) => void,
   *          areaName: (areaId: string) => string}} parts
   */
  constructor(parts) {
    Object.assign(this, parts);
    /** Whether the feed's snapshot came (before it, the list is not known to be empty). */
    this.loaded = false;
    this.incidents = new Map();
    /** When each incident left the list since the snapshot: an older transition that
     * arrives later (a repeat) does not bring it back, nor anything after an operator's
     * resolve or merge. */
    this.gone = new Map();
    this.items = new Map();
    /** SOP titles by id, learnt from incidents' details (`checklist`). */
    this.sops = new Map();
    this.asking = new Set();
    this.list.addEventListener("click", (event) => {
      const item = event.target.closest("[data-incident]");
      if (item && event.target.closest("button[data-action='open']")) this.open(item.dataset.incident);
    });
  }

  /** Replace everything with a snapshot's incidents (rows as in `GET /v1/incidents`). */
  load(incidents) {
    this.loaded = true;
    this.incidents = new Map(incidents.map((i) => [i.incident_id, i]));
    this.gone.clear();
    this.render();
  }

  /** Apply one `incident` message of the feed. */
  apply(message) {
    const id = message.incident_id;
    const known = this.incidents.get(id);
    switch (message.state) {
      case "open":
      case "update": {
        if (known && Date.parse(message.updated_at) < Date.parse(known.updated_at)) return;
        if (!known && Date.parse(message.updated_at) <= (this.gone.get(id) ?? -Infinity)) return;
        this.gone.delete(id);
        const { alerts, escalated, ...fields } = message;
        const incident = {
          ...(known || { acknowledged_by: null, acknowledged_at: null, assignee: null }),
          ...fields,
          // Operators' state holds: an acknowledged incident stays acknowledged.
          state: known?.state === "acknowledged" ? "acknowledged" : "open",
          alert_count: Math.max(known?.alert_count || 0, (alerts || []).length),
        };
        this.incidents.set(id, incident);
        if (!known) this.tell(incident);
        break;
      }
      case "close":
      case "retract":
        if (known && Date.parse(message.updated_at) < Date.parse(known.updated_at)) return;
        this.incidents.delete(id);
        this.gone.set(id, Math.max(this.gone.get(id) ?? -Infinity, Date.parse(message.updated_at)));
        break;
      case "resolve":
      case "merge":
        this.incidents.delete(id);
        this.gone.set(id, Infinity);
        break;
      case "acknowledge":
        if (!known) return;
        Object.assign(known, { state: "acknowledged", acknowledged_by: message.by, acknowledged_at: message.updated_at });
        break;
      case "assign":
        if (!known) return;
        Object.assign(known, { assignee: message.assignee, assigned_by: message.by, assigned_at: message.updated_at });
        break;
      default:
        return; // a note or a step: nothing listed changes
    }
    this.render();
  }

  /** An incident as the API answered an action or a read (`IncidentDetail`). The database
   * can be a sink's batch behind the feed: it never brings back an incident the feed took
   * off, nor older correlation fields than the feed's. */
  replace(incident) {
    this.learn(incident);
    const known = this.incidents.get(incident.incident_id);
    if (!ON_SCREEN.has(incident.state)) {
      this.incidents.delete(incident.incident_id);
      // A closed incident comes back with a later transition; the others never do.
      const until = incident.state === "closed" ? Date.parse(incident.updated_at) : Infinity;
      this.gone.set(incident.incident_id, until);
    } else if (known) {
      const { alerts, alert_ids, timeline, checklist, ...row } = incident;
      if (Date.parse(known.updated_at) > Date.parse(row.updated_at)) {
        for (const field of CORRELATED) row[field] = known[field];
      }
      row.alert_count = Math.max(row.alert_count, known.alert_count);
      this.incidents.set(incident.incident_id, row);
    }
    this.render();
  }

  /** Keep the SOP's titles of an incident's detail. */
  learn(detail) {
    if (!detail.checklist || this.sops.has(detail.sop)) return;
    this.sops.set(detail.sop, { en: detail.checklist.title_en, vi: detail.checklist.title_vi });
    this.render();
  }

  sopName(incident) {
    const titles = this.sops.get(incident.sop);
    if (titles) return document.documentElement.lang === "en" ? titles.en : titles.vi;
    this.ask(incident);
    return incident.sop;
  }

  /** The SOP's titles come with an incident's detail: read one stored incident of each
   * SOP (the list first, so that one the sink has not written yet costs no 404). */
  async ask(incident) {
    const sop = incident.sop;
    if (this.asking.has(sop)) return;
    this.asking.add(sop);
    try {
      for (let attempt = 1; attempt <= STORE_RETRIES && !this.sops.has(sop); attempt += 1) {
        const { items } = await this.query({ sop, limit: 1 });
        if (items.length) {
          this.learn(await this.read(items[0].incident_id));
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 300 * attempt));
      }
    } catch {
      // Shown by its id until another incident of the SOP is read.
    } finally {
      this.asking.delete(sop);
    }
  }

  /** Read out a new critical incident at once; others are listed, not read out. */
  tell(incident) {
    if (incident.severity !== "critical") return;
    this.announce.textContent = t("newIncident", { title: incidentTitle(incident), area: this.areaName(incident.area_id) });
  }

  get(id) {
    return this.incidents.get(id);
  }

  sorted() {
    return [...this.incidents.values()].sort(
      (a, b) => Date.parse(b.opened_at) - Date.parse(a.opened_at) || (a.incident_id < b.incident_id ? -1 : 1),
    );
  }

  render() {
    const focusedId = document.activeElement?.closest?.("[data-incident]")?.dataset.incident;
    const shown = this.sorted().slice(0, SHOWN);
    const keep = new Set(shown.map((i) => i.incident_id));
    for (const [id, item] of this.items) {
      if (!keep.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    shown.forEach((incident, index) => {
      const item = this.draw(incident);
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] || null);
    });
    const total = this.incidents.size;
    this.count.textContent = total ? t("incidentCount", { n: total }) : "";
    this.empty.hidden = total > 0;
    // Until the feed's first snapshot nothing is known: "loading", never "none open".
    const emptyKey = this.loaded ? "noIncidents" : "loading";
    if (this.empty.dataset.i18n !== emptyKey) {
      this.empty.dataset.i18n = emptyKey;
      this.empty.textContent = t(emptyKey);
    }
    // Keyboard users keep their place when an item is redrawn.
    if (focusedId && !this.list.contains(document.activeElement)) {
      this.items.get(focusedId)?.querySelector("button")?.focus();
    }
  }

  draw(incident) {
    let item = this.items.get(incident.incident_id);
    if (!item) {
      item = node("li", "incident");
      item.dataset.incident = incident.incident_id;
      this.items.set(incident.incident_id, item);
    }
    item.dataset.state = incident.state;
    item.dataset.severity = incident.severity;
    item.dataset.alerts = String(incident.alert_count);
    item.dataset.sop = incident.sop;
    const head = node("p", "alert-head");
    head.append(
      node("span", `badge sev-${incident.severity}`, t(`severity.${incident.severity}`)),
      node("span", "alert-state", t(`state.${incident.state}`)),
      node("span", "muted", t("openedAt", { time: formatTime(incident.opened_at, { seconds: true }) })),
    );
    const title = node("button", "link alert-title", incidentTitle(incident));
    title.type = "button";
    title.dataset.action = "open";
    title.setAttribute("aria-label", `${t("details")}: ${incidentTitle(incident)}`);
    const facts = node("p", "incident-facts");
    facts.append(
      node("span", "incident-area", this.areaName(incident.area_id)),
      node("span", "incident-count", t(incident.alert_count === 1 ? "alertsOne" : "alertsMany", { n: incident.alert_count })),
      node("span", "incident-sop", t("sopNamed", { title: this.sopName(incident) })),
    );
    const parts = [head, title, facts];
    if (incident.acknowledged_by) parts.push(node("p", "muted small", t("ackBy", { who: incident.acknowledged_by })));
    if (incident.assignee) parts.push(node("p", "muted small", t("assignedTo", { who: incident.assignee })));
    item.replaceChildren(...parts);
    return item;
  }
}
