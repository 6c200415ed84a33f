// The live feed (`/v1/live`, WebSocket): a snapshot, then entity updates, alert
// transitions, incident messages and area tiles (an area's figures now, at most every
// `IOC_LIVE__AREA_INTERVAL_S` per area). It reconnects by itself with exponential backoff and
// resumes from the last id; after an API restart the id belongs to another process, so the
// API sends a fresh snapshot (reason `unknown-id`) and the page starts again from it.

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
/** Silence longer than this means a dead connection (the API sends a ping every 15 s). */
const SILENCE_MS = 45000;

export class LiveFeed {
  /**
   * @param {object} options
   * @param {(since: string|null) => string} options.url
   * @param {(snapshot: {entities: object[], alerts: object[], incidents: object[], areas: object[], reason: string}) => void} options.onSnapshot
   * @param {(entity: object) => void} options.onEntity
   * @param {(alert: object) => void} options.onAlert
   * @param {(incident: object) => void} options.onIncident
   * @param {(area: object) => void} options.onArea
   * @param {(state: string, retryMs?: number) => void} options.onStatus
   * @param {() => Promise<boolean>} options.stillAllowed  false when the key was refused
   */
  constructor(options) {
    this.options = options;
    this.socket = null;
    this.lastId = null;
    this.attempt = 0;
    this.timer = null;
    this.watchdog = null;
    this.stopped = false;
    this.pending = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    if (this.socket) this.socket.close(1000, "page closed");
    this.socket = null;
  }

  /** Drop the position and connect again: a fresh snapshot (after a namespace switch). */
  restart() {
    this.stop();
    this.lastId = null;
    this.attempt = 0;
    this.start();
  }

  connect() {
    this.options.onStatus("connecting");
    const socket = new WebSocket(this.options.url(this.lastId));
    this.socket = socket;
    this.pending = null;
    socket.addEventListener("message", (event) => this.receive(socket, event.data));
    socket.addEventListener("close", () => this.closed(socket));
    this.armWatchdog(socket);
  }

  armWatchdog(socket) {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => socket.close(4000, "silent"), SILENCE_MS);
  }

  receive(socket, text) {
    if (socket !== this.socket) return;
    this.armWatchdog(socket);
    const message = JSON.parse(text);
    if (message.id) this.lastId = message.id;
    switch (message.type) {
      case "snapshot":
        // A large snapshot comes in chunks; only the last one (more: false) completes it.
        this.pending = this.pending || { entities: [], alerts: [], incidents: [], areas: [], reason: message.reason };
        this.pending.entities.push(...message.entities);
        this.pending.alerts.push(...message.alerts);
        this.pending.incidents.push(...(message.incidents || []));
        this.pending.areas.push(...(message.areas || []));
        if (!message.more) {
          const snapshot = this.pending;
          this.pending = null;
          this.live();
          this.options.onSnapshot(snapshot);
        }
        break;
      case "resumed":
        this.live();
        break;
      case "entity":
        this.options.onEntity(message.entity);
        break;
      case "alert":
        this.options.onAlert(message.alert);
        break;
      case "incident":
        this.options.onIncident(message.incident);
        break;
      case "area":
        this.options.onArea(message.area);
        break;
      default:
        break; // ping, and kinds a newer API may add
    }
  }

  live() {
    this.attempt = 0;
    this.options.onStatus("live");
  }

  async closed(socket) {
    if (socket !== this.socket) return;
    clearTimeout(this.watchdog);
    this.socket = null;
    if (this.stopped) return;
    // A refused key fails the handshake like a network error does; ask the API which.
    if (!(await this.options.stillAllowed())) {
      this.stopped = true;
      this.options.onStatus("refused");
      return;
    }
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    // Jitter, so that the screens of a control room do not all come back at once.
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt += 1;
    this.options.onStatus("retrying", delay);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
