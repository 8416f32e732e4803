// The check-in page's service worker: keeps the page and every module and style it loads, so
// that a coordinator can reload (or reopen) the page without a network. The page's own data
// (queued scans, roster) lives in IndexedDB; nothing from /api or /ws passes through here.
// Network first, so a new version is picked up whenever the service is reachable; the cached
// copy answers when the network fails or takes too long.

const CACHE = "streamsvc-checkin-v2";
// Every file the page needs: a module missing here would make an offline reload fail.
const SHELL = [
  "/checkin",
  "/static/checkin.css",
  "/static/checkin.js",
  "/static/checkin-camera.js",
  "/static/checkin-outbox.js",
  "/static/checkin-roster.js",
  "/static/checkin-socket.js",
  "/static/checkin-view.js",
  "/static/common-backoff.js",
  "/static/common-dom.js",
  "/static/common-format.js",
  "/static/common-labels.js",
  "/static/common-text.js",
  "/static/common-uuid.js",
];
const NETWORK_WAIT = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!SHELL.includes(url.pathname)) return;
  event.respondWith(networkFirst(event.request, url.pathname));
});

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  const network = fetch(request).then((response) => {
    if (response.ok) cache.put(key, response.clone());
    return response;
  });
  network.catch(() => {}); // a failure is handled below, whichever promise wins
  const slow = new Promise((resolve) => setTimeout(resolve, NETWORK_WAIT, null));
  try {
    const first = await Promise.race([network, slow]);
    if (first) return first;
  } catch {
    // offline: answer from the cache below
  }
  const cached = await cache.match(key);
  if (cached) return cached;
  return network; // nothing cached yet: wait for the network after all
}
