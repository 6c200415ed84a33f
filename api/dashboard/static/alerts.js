// The live alert list: open and acknowledged alerts from the feed's snapshot, kept up to
// date by its transitions (by alert id, newer `updated_at` wins), with acknowledge and
// resolve buttons that call the API and apply its answer. Provisional alerts (a window
// rule foreseeing an alert before its minutes are final) are listed apart, after the
// confirmed ones, until the rules confirm (`open`) or retract them.

import { formatTime, t } from "./i18n.js";

const RANK = { critical: 0, warning: 1, info: 2 };
/** Items drawn at most; the count above the list tells how many there are. */
const SHOWN = 200;
/** Tries of an action on an alert the database does not hold yet (about 4.5 s in all). */
const STORE_RETRIES = 6;

function node(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export class AlertBoard {
  /**
   * @param {{list: HTMLElement, empty: HTMLElement, count: HTMLElement, announce: HTMLElement,
   *          act: (id: string, action: string) => Promise<object>,
   *          open: (entityId: string, domain: string) => void,
   *          entityName: (entityId: string) => string,
   *          changed: () => void}} parts
   */
  constructor(parts) {
    Object.assign(this, parts);
    /** Whether the feed's snapshot came (before it, the list is not known to be empty). */
    this.loaded = false;
    this.alerts = new Map();
    this.items = new Map();
    this.list.addEventListener("click", (event) => this.click(event));
  }

  /** Replace everything with a snapshot's open alerts. */
  load(alerts) {
    this.loaded = true;
    this.alerts = new Map(alerts.map((a) => [a.alert_id, a]));
    this.render();
  }

  /** Apply one transition from the feed (`provisional`, `open`, `update`, `retract` or
   * `resolve` from the rules; `acknowledge` or `resolve` from an operator on any screen). */
  apply(transition) {
    const known = this.alerts.get(transition.alert_id);
    if (known && Date.parse(transition.updated_at) < Date.parse(known.updated_at)) return;
    if (transition.state === "resolve" || transition.state === "retract") {
      this.alerts.delete(transition.alert_id);
    } else if (transition.state === "acknowledge") {
      const { by, ...rest } = transition;
      this.alerts.set(transition.alert_id, {
        ...(known || rest),
        state: "acknowledged",
        acknowledged_by: by,
        acknowledged_at: transition.updated_at,
      });
    } else if (known) {
      // An update keeps what operators did (acknowledged stays acknowledged); an open
      // confirms a provisional alert.
      const confirmed = known.provisional && transition.state !== "provisional";
      Object.assign(known, { updated_at: transition.updated_at, values: transition.values });
      if (confirmed) {
        known.provisional = false;
        this.tell(known);
      }
    } else {
      const provisional = transition.state === "provisional";
      const alert = { ...transition, state: "open", provisional, acknowledged_by: null, acknowledged_at: null };
      this.alerts.set(transition.alert_id, alert);
      if (!provisional) this.tell(alert);
    }
    this.render();
  }

  /** Read out at once only what needs action at once: a confirmed critical alert. In a
   * storm the instant rules open dozens of warnings a minute, which would drown them. */
  tell(alert) {
    if (alert.severity !== "critical") return;
    this.announce.textContent = t("newAlert", { title: this.title(alert), entity: this.entityName(alert.entity_id) });
  }

  /** The API's answer to an action (`AlertPublic`). */
  replace(alert) {
    if (alert.state === "resolved") this.alerts.delete(alert.alert_id);
    else this.alerts.set(alert.alert_id, alert);
    this.render();
  }

  forEntity(entityId) {
    return [...this.alerts.values()].filter((a) => a.entity_id === entityId);
  }

  all() {
    return [...this.alerts.values()];
  }

  title(alert) {
    return document.documentElement.lang === "en" ? alert.title_en : alert.title_vi || alert.title_en;
  }

  sorted() {
    return [...this.alerts.values()].sort(
      (a, b) =>
        (a.state === "acknowledged") - (b.state === "acknowledged") ||
        Boolean(a.provisional) - Boolean(b.provisional) ||
        (RANK[a.severity] ?? 3) - (RANK[b.severity] ?? 3) ||
        Date.parse(b.opened_at) - Date.parse(a.opened_at),
    );
  }

  render() {
    const focused = document.activeElement?.closest?.("[data-alert]");
    const focusKey = focused && [focused.dataset.alert, document.activeElement.dataset.action];
    const shown = this.sorted().slice(0, SHOWN);
    const keep = new Set(shown.map((a) => a.alert_id));
    for (const [id, item] of this.items) {
      if (!keep.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    shown.forEach((alert, index) => {
      const item = this.draw(alert);
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] || null);
    });
    const total = this.alerts.size;
    this.count.textContent = total ? t("alertCount", { n: total }) : "";
    this.empty.hidden = total > 0;
    // Until the feed's first snapshot nothing is known: "loading", never "none open".
    const emptyKey = this.loaded ? "noAlerts" : "loading";
    if (this.empty.dataset.i18n !== emptyKey) {
      this.empty.dataset.i18n = emptyKey;
      this.empty.textContent = t(emptyKey);
    }
    // Redrawing replaced the focused button: focus its successor in the same alert (after
    // acknowledging, the resolve button), else the list, so keyboard users keep their place.
    if (focusKey && !this.list.contains(document.activeElement)) {
      const item = this.items.get(focusKey[0]);
      const target =
        item?.querySelector(`[data-action="${focusKey[1]}"]`) ||
        item?.querySelector('[data-action="resolve"]') ||
        this.list.querySelector("button") ||
        document.getElementById("alerts");
      target.focus();
    }
    this.changed();
  }

  draw(alert) {
    let item = this.items.get(alert.alert_id);
    if (!item) {
      item = node("li", "alert");
      item.dataset.alert = alert.alert_id;
      this.items.set(alert.alert_id, item);
    }
    item.dataset.state = alert.state;
    item.dataset.severity = alert.severity;
    item.dataset.entity = alert.entity_id;
    item.dataset.rule = alert.rule_id;
    item.dataset.provisional = alert.provisional ? "true" : "false";
    const head = node("p", "alert-head");
    head.append(
      node("span", `badge sev-${alert.severity}`, t(`severity.${alert.severity}`)),
      node("span", "alert-state", t(`state.${alert.state}`)),
    );
    if (alert.provisional) head.append(node("span", "badge provisional", t("provisional")));
    head.append(node("span", "muted", t("openedAt", { time: formatTime(alert.opened_at, { seconds: true }) })));
    const title = node("p", "alert-title", this.title(alert));
    const where = node("button", "link", this.entityName(alert.entity_id));
    where.type = "button";
    where.dataset.action = "details";
    where.setAttribute("aria-label", `${t("details")}: ${this.entityName(alert.entity_id)}`);
    const actions = node("div", "actions");
    if (alert.state === "open") actions.appendChild(this.button("ack", t("acknowledge"), alert));
    actions.appendChild(this.button("resolve", t("resolve"), alert));
    const parts = [head, title, where, actions];
    if (alert.acknowledged_by) parts.push(node("p", "muted small", t("ackBy", { who: alert.acknowledged_by })));
    const error = node("p", "error");
    error.setAttribute("role", "alert");
    parts.push(error);
    item.replaceChildren(...parts);
    return item;
  }

  button(action, label, alert) {
    const b = node("button", action === "ack" ? "primary" : null, label);
    b.type = "button";
    b.dataset.action = action;
    b.setAttribute("aria-label", `${label}: ${this.title(alert)}, ${this.entityName(alert.entity_id)}`);
    return b;
  }

  /** The feed can announce an alert a moment before the sink has stored it, and the API
   * answers 404 until then: try again for a few seconds before reporting the failure. */
  async actWhenStored(id, action) {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.act(id, action);
      } catch (error) {
        if (error.status !== 404 || attempt >= STORE_RETRIES) throw error;
        await new Promise((resolve) => setTimeout(resolve, 300 * attempt));
      }
    }
  }

  async click(event) {
    const button = event.target.closest("button[data-action]");
    const item = event.target.closest("[data-alert]");
    if (!button || !item) return;
    const alert = this.alerts.get(item.dataset.alert);
    if (!alert) return;
    if (button.dataset.action === "details") {
      this.open(alert.entity_id, alert.domain);
      return;
    }
    // Busy, not disabled: a disabled button loses the keyboard focus.
    if (item.getAttribute("aria-busy") === "true") return;
    item.setAttribute("aria-busy", "true");
    try {
      this.replace(await this.actWhenStored(alert.alert_id, button.dataset.action));
    } catch (error) {
      item.querySelector(".error").textContent = t("actionFailed", { detail: error.message });
      // Someone else acted first (409): the answer names the alert's state now.
      const state = error.problem?.state;
      if (state === "resolved") this.alerts.delete(alert.alert_id);
      else if (state) alert.state = state;
      if (state) this.render();
    } finally {
      item.removeAttribute("aria-busy");
    }
  }
}
