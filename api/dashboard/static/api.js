// Calls to the API with the operator's key. The key lives in sessionStorage: it is gone
// when the tab closes and never reaches localStorage, cookies or the page's URL.

const KEY_STORE = "ioc.key";
const NS_STORE = "ioc.namespace";

/** How the API takes a namespace per request, when it does (see discoverNamespaces). */
let namespaceParam = null;

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function getKey() {
  return sessionStorage.getItem(KEY_STORE);
}

export function setKey(key) {
  sessionStorage.setItem(KEY_STORE, key.trim());
}

export function clearKey() {
  sessionStorage.removeItem(KEY_STORE);
}

/** Take `?key=` from the address once: keep it for the tab, and drop it from the URL so it
 * is neither bookmarked nor left on the wall screen. */
export function takeKeyFromUrl() {
  const url = new URL(window.location.href);
  const key = url.searchParams.get("key");
  if (!key) return;
  setKey(key);
  url.searchParams.delete("key");
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
}

export function getNamespace() {
  return namespaceParam ? sessionStorage.getItem(NS_STORE) : null;
}

export function setNamespace(name) {
  if (name) sessionStorage.setItem(NS_STORE, name);
  else sessionStorage.removeItem(NS_STORE);
}

function withNamespace(url, headers) {
  const ns = getNamespace();
  if (!ns) return;
  if (namespaceParam.in === "header") headers[namespaceParam.name] = ns;
  else url.searchParams.set(namespaceParam.name, ns);
}

/** GET (or POST, with `body` as JSON) `path` as JSON with the key; an ApiError with the
 * problem details otherwise. */
export async function api(path, { method = "GET", params = {}, body } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json", "X-API-Key": getKey() || "" };
  withNamespace(url, headers);
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = null;
    }
    throw new ApiError(response.status, problem);
  }
  return response.json();
}

/** URL of the live WebSocket: browsers cannot set headers on one, so the key goes in the
 * query (the API accepts `api_key` there for WebSocket and SSE only). */
export function liveUrl(since) {
  const url = new URL("/v1/live", window.location.origin);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("api_key", getKey() || "");
  const ns = getNamespace();
  if (ns && namespaceParam.in === "query") url.searchParams.set(namespaceParam.name, ns);
  if (since) url.searchParams.set("since", since);
  return url.toString();
}

/** The namespaces the key may switch between, when this API offers a choice.
 *
 * The API tells what it offers in its OpenAPI document (public, no key): a
 * `GET /v1/namespaces` operation, and a `namespace` parameter (query or header) on the
 * read routes. That route lists what the key may read: every namespace for an engineer
 * (`replay` scope), the API's own for an operator. Asking the document first avoids a
 * 404 in the console of APIs without the route. */
export async function discoverNamespaces() {
  let doc;
  try {
    const response = await fetch("/openapi.json", { cache: "no-store" });
    if (!response.ok) return [];
    doc = await response.json();
  } catch {
    return [];
  }
  const paths = doc.paths || {};
  const param = ((paths["/v1/overview"] || {}).get?.parameters || []).find((p) =>
    /namespace/i.test(p.name),
  );
  if (!paths["/v1/namespaces"]?.get || !param) return [];
  namespaceParam = { name: param.name, in: param.in === "header" ? "header" : "query" };
  let names = [];
  try {
    const body = await api("/v1/namespaces");
    const items = Array.isArray(body) ? body : body.items || body.namespaces || [];
    names = items.map((item) => (typeof item === "string" ? item : item.name)).filter(Boolean);
  } catch {
    names = [];
  }
  // One namespace is no choice: requests then name none (a stale choice of an engineer
  // who used this tab before is dropped).
  if (names.length < 2) {
    namespaceParam = null;
    sessionStorage.removeItem(NS_STORE);
    return [];
  }
  const kept = sessionStorage.getItem(NS_STORE);
  if (kept && !names.includes(kept)) sessionStorage.removeItem(NS_STORE);
  return names;
}
