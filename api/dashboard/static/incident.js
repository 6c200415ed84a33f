// One incident's panel (`GET /v1/incidents/{id}`), in a modal dialog: what and where, the
// buttons acknowledge and resolve, its SOP checklist (a checkbox per step: checking one
// POSTs `/v1/incidents/{id}/steps/{step}` and shows who did it and when; a checked step
// stays checked), its member alerts (each opens its entity), its timeline and a note
// field. Every action answers with the incident, which is drawn again; other screens'
// actions arrive on the feed and bring a fresh read.

import { ApiError } from "./api.js";
import { incidentTitle, whenStored } from "./incidents.js";
import { formatNumber, formatTime, t } from "./i18n.js";

/** States in which the SOP's steps may still be checked and the incident resolved. */
const LIVE = new Set(["open", "acknowledged", "closed"]);
const MISSING_REREADS = 4;

function node(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function localized(thing, en = "en", vi = "vi") {
  return document.documentElement.lang === "en" ? thing[en] : thing[vi] || thing[en];
}

export class IncidentView {
  /**
   * @param {{dialog: HTMLDialogElement,
   *          read: (id: string) => Promise<object>,
   *          act: (id: string, path: string, body?: object) => Promise<object>,
   *          areaName: (areaId: string) => string,
   *          entityName: (entityId: string) => string,
   *          openEntity: (entityId: string, domain: string) => void,
   *          changed: (incident: object) => void}} parts
   */
  constructor(parts) {
    Object.assign(this, parts);
    this.current = null;
    this.request = 0;
    this.rereads = 0;
    this.steps = new Map();
    const $ = (selector) => this.dialog.querySelector(selector);
    this.parts = {
      title: $("#incident-title"),
      meta: $("#incident-meta"),
      facts: $("#incident-facts"),
      actions: $("#incident-actions"),
      error: $("#incident-error"),
      sop: $("#checklist-sop"),
      progress: $("#checklist-progress"),
      checklist: $("#checklist"),
      alerts: $("#incident-alerts"),
      timeline: $("#timeline"),
      note: $("#note"),
    };
    $("#incident-close").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => {
      this.current = null;
      this.request += 1;
    });
    this.parts.actions.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button) this.perform(button.dataset.action, button);
    });
    this.parts.checklist.addEventListener("click", (event) => {
      const box = event.target.closest("input[type=checkbox]");
      if (box) this.check(event, box);
    });
    this.parts.alerts.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-entity]");
      if (button) this.openEntity(button.dataset.entity, button.dataset.domain);
    });
    $("#note-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.annotate();
    });
  }

  get openIncident() {
    return this.current?.incident_id ?? null;
  }

  /** Whether an alert is one of the open incident's. */
  holds(alertId) {
    return Boolean(this.current?.alert_ids?.includes(alertId));
  }

  async open(id) {
    const request = ++this.request;
    this.current = { incident_id: id };
    this.rereads = 0;
    this.steps.clear();
    this.parts.title.textContent = t("loading");
    this.parts.meta.textContent = "";
    this.parts.error.textContent = "";
    for (const part of ["facts", "actions", "checklist", "alerts", "timeline"]) this.parts[part].replaceChildren();
    this.parts.sop.textContent = "";
    this.parts.progress.textContent = "";
    this.parts.note.value = "";
    this.dialog.dataset.incident = id;
    if (!this.dialog.open) this.dialog.showModal();
    let detail;
    try {
      detail = await whenStored(() => this.read(id));
    } catch (error) {
      if (request !== this.request) return;
      this.parts.title.textContent = "";
      this.parts.error.textContent =
        error instanceof ApiError && error.status === 404 ? t("unknownIncident") : error.message;
      return;
    }
    if (request === this.request) this.show(detail);
  }

  /** Another screen acted, or the tier moved the incident: read it again. */
  async refresh() {
    const id = this.openIncident;
    if (!id) return;
    const request = this.request;
    try {
      const detail = await this.read(id);
      // A read that began before an action's answer came is older than what is shown:
      // the timeline only grows.
      const shown = this.current?.timeline?.length ?? 0;
      if (request === this.request && detail.timeline.length >= shown) this.show(detail);
    } catch {
      // The next message or the next opening tries again.
    }
  }

  relabel() {
    if (this.current?.timeline) this.show(this.current);
  }

  show(detail) {
    // Member alerts the sink had not written yet: read again in a moment (a few times).
    const missing = detail.alert_ids.length > detail.alerts.length;
    if (missing && this.rereads < MISSING_REREADS) {
      this.rereads += 1;
      setTimeout(() => this.refresh(), 1000 * this.rereads);
    }
    this.current = detail;
    this.changed(detail);
    this.dialog.dataset.state = detail.state;
    this.parts.title.textContent = incidentTitle(detail);
    this.parts.meta.textContent = [
      t(`severity.${detail.severity}`),
      t(`state.${detail.state}`),
      this.areaName(detail.area_id),
      t("openedAt", { time: formatTime(detail.opened_at, { seconds: true, date: true }) }),
    ].join(" · ");
    this.drawFacts(detail);
    this.drawActions(detail);
    this.drawChecklist(detail);
    this.drawAlerts(detail);
    this.drawTimeline(detail);
  }

  drawFacts(detail) {
    const rows = [];
    if (detail.acknowledged_by) rows.push(t("ackBy", { who: detail.acknowledged_by }));
    if (detail.assignee) rows.push(t("assignedTo", { who: detail.assignee }));
    if (detail.resolved_by) rows.push(t("resolvedBy", { who: detail.resolved_by, time: formatTime(detail.resolved_at) }));
    this.parts.facts.replaceChildren(...rows.map((text) => node("p", "muted small", text)));
  }

  drawActions(detail) {
    const buttons = [];
    const focused = this.parts.actions.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    if (detail.state === "open") buttons.push(this.button("acknowledge", t("acknowledge"), "primary"));
    if (LIVE.has(detail.state)) buttons.push(this.button("resolve", t("resolve")));
    this.parts.actions.replaceChildren(...buttons);
    if (focused) (this.parts.actions.querySelector(`[data-action="${focused}"]`) || this.parts.actions.querySelector("button") || this.parts.note).focus();
  }

  button(action, label, className = null) {
    const b = node("button", className, label);
    b.type = "button";
    b.dataset.action = action;
    return b;
  }

  /** Steps are updated in place, so the checkbox that has the focus keeps it. */
  drawChecklist(detail) {
    const checklist = detail.checklist;
    const list = this.parts.checklist;
    if (!checklist) {
      this.parts.sop.textContent = t("sopNamed", { title: detail.sop });
      this.parts.progress.textContent = t("sopUnknown");
      list.replaceChildren();
      return;
    }
    this.parts.sop.textContent = t("sopNamed", { title: localized(checklist, "title_en", "title_vi") });
    const done = checklist.steps.filter((s) => s.checked_by).length;
    this.parts.progress.textContent = t("stepsDone", { done: formatNumber(done), total: formatNumber(checklist.steps.length) });
    const editable = LIVE.has(detail.state);
    checklist.steps.forEach((step, index) => {
      let item = this.steps.get(step.id);
      if (!item) {
        item = node("li", "step");
        item.dataset.step = step.id;
        const label = node("label");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.id = `step-${step.id}`;
        label.append(box, node("span", "step-text"));
        item.append(label, node("p", "muted small step-by"), node("p", "error"));
        item.querySelector(".error").setAttribute("role", "alert");
        this.steps.set(step.id, item);
      }
      if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
      const box = item.querySelector("input");
      const checked = Boolean(step.checked_by);
      item.dataset.checked = String(checked);
      // While this screen's own check is on its way, a read that began before it (the feed's
      // refresh) must not untick the box under the operator's click.
      box.checked = checked || item.getAttribute("aria-busy") === "true";
      // A checked step stays checked (there is no unchecking); read-only, not disabled, so
      // a keyboard user's focus stays where it is.
      box.setAttribute("aria-readonly", String(checked || !editable));
      item.querySelector(".step-text").textContent = localized(step);
      item.querySelector(".step-by").textContent = checked
        ? t("checkedBy", { who: step.checked_by, time: formatTime(step.checked_at, { seconds: true }) })
        : "";
    });
    while (list.children.length > checklist.steps.length) list.lastElementChild.remove();
  }

  drawAlerts(detail) {
    const items = detail.alerts.map((alert) => {
      const li = node("li", "member");
      li.dataset.alert = alert.alert_id;
      li.dataset.state = alert.state;
      const where = node("button", "link", this.entityName(alert.entity_id));
      where.type = "button";
      where.dataset.entity = alert.entity_id;
      where.dataset.domain = alert.domain;
      where.setAttribute("aria-label", `${t("details")}: ${this.entityName(alert.entity_id)}`);
      li.append(
        node("span", `badge sev-${alert.severity}`, t(`severity.${alert.severity}`)),
        " ",
        node("span", "member-title", localized(alert, "title_en", "title_vi")),
        " ",
        node("span", "muted", `(${t(`state.${alert.state}`)})`),
        " ",
        where,
      );
      return li;
    });
    const missing = detail.alert_ids.length - detail.alerts.length;
    if (missing > 0) items.push(node("li", "muted", t("alertsNotStored", { n: missing })));
    this.parts.alerts.replaceChildren(...items);
  }

  drawTimeline(detail) {
    const steps = new Map((detail.checklist?.steps || []).map((s) => [s.id, s]));
    const items = [...detail.timeline].reverse().map((entry) => {
      const li = node("li", "entry");
      li.dataset.kind = entry.kind;
      const time = node("time", "muted", formatTime(entry.at, { seconds: true }));
      time.dateTime = entry.at;
      const head = node("span", "entry-kind", t(`timeline.${entry.kind}`));
      li.append(time, " ", head);
      if (entry.by) li.append(" ", node("span", "muted", t("byWho", { who: entry.by })));
      const text = this.entryText(entry, steps);
      if (text) li.append(node("p", "entry-text", text));
      return li;
    });
    this.parts.timeline.replaceChildren(...items);
  }

  entryText(entry, steps) {
    const d = entry.detail || {};
    switch (entry.kind) {
      case "open":
      case "update": {
        const n = (d.alerts || []).length;
        const parts = [t(`severity.${d.severity}`), t(n === 1 ? "alertsOne" : "alertsMany", { n })];
        if (d.escalated) parts.push(t("escalated"));
        return parts.join(" · ");
      }
      case "annotate":
        return d.text || "";
      case "assign":
        return t("assignedTo", { who: d.assignee });
      case "step": {
        const step = steps.get(d.step_id);
        return step ? localized(step) : d.step_id;
      }
      case "merge":
        return d.into ? t("mergedInto", { id: d.into }) : t("mergedFrom", { id: d.from });
      default:
        return "";
    }
  }

  /** Acknowledge or resolve. */
  async perform(action, button) {
    const id = this.openIncident;
    if (!id || button.getAttribute("aria-busy") === "true") return;
    button.setAttribute("aria-busy", "true");
    this.parts.error.textContent = "";
    try {
      this.show(await whenStored(() => this.act(id, action)));
    } catch (error) {
      this.failed(error, this.parts.error);
    } finally {
      button.removeAttribute("aria-busy");
    }
  }

  async check(event, box) {
    const item = box.closest("[data-step]");
    if (box.getAttribute("aria-readonly") === "true" || item.getAttribute("aria-busy") === "true") {
      event.preventDefault(); // checked by someone, or the incident is over
      return;
    }
    const id = this.openIncident;
    item.setAttribute("aria-busy", "true");
    item.querySelector(".error").textContent = "";
    try {
      this.show(await whenStored(() => this.act(id, `steps/${encodeURIComponent(item.dataset.step)}`)));
    } catch (error) {
      box.checked = false;
      this.failed(error, item.querySelector(".error"));
    } finally {
      item.removeAttribute("aria-busy");
    }
  }

  async annotate() {
    const id = this.openIncident;
    const text = this.parts.note.value.trim();
    if (!id || !text) return;
    this.parts.error.textContent = "";
    try {
      this.show(await whenStored(() => this.act(id, "notes", { text })));
      this.parts.note.value = "";
    } catch (error) {
      this.failed(error, this.parts.error);
    }
  }

  /** Show why an action failed; someone else may have acted first (409): read again. */
  failed(error, where) {
    where.textContent = t("actionFailed", { detail: error.message });
    if (error.status === 409) this.refresh();
  }
}
