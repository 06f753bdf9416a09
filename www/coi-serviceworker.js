// Cross-origin isolation for static hosts that cannot send headers (GitHub Pages): without it a
// page has no SharedArrayBuffer and the worker runs the single-thread wasm build. Optional: a page
// opts in with, first in its <head>,
//   <script src="coi-serviceworker.js"></script>
// (scripts/build-dist.sh --coi-serviceworker adds it to the pages in dist/). Hosts that send the
// headers themselves (the static Space's custom_headers, `hubside serve`) do not need it.
//
// As a page script it registers itself as the service worker of its folder and, once that
// controls the page, reloads it once. As the service worker it adds COOP/COEP to every
// same-origin response, which makes the pages cross-origin isolated. Other origins' responses
// pass untouched: under COEP they must come with CORS (the Hub's model files do) or CORP.
if (typeof window === 'undefined') {
  self.addEventListener('install', () => self.skipWaiting());
  self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
  self.addEventListener('fetch', (event) => {
    const { request } = event;
    if (new URL(request.url).origin !== self.location.origin) return;
    // Chromium refuses this combination from a service worker's fetch.
    if (request.cache === 'only-if-cached' && request.mode !== 'same-origin') return;
    event.respondWith(fetch(request).then((response) => {
      if (response.type === 'opaque' || response.type === 'opaqueredirect') return response;
      const headers = new Headers(response.headers);
      headers.set('Cross-Origin-Opener-Policy', 'same-origin');
      headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
      headers.set('Cross-Origin-Resource-Policy', 'cross-origin');
      return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
    }));
  });
} else if (!window.crossOriginIsolated && window.isSecureContext && 'serviceWorker' in navigator
  // Already controlled yet not isolated: the browser does not isolate this way, and reloading
  // would loop.
  && !navigator.serviceWorker.controller) {
  navigator.serviceWorker.addEventListener('controllerchange', () => window.location.reload(), { once: true });
  navigator.serviceWorker.register(document.currentScript.src).catch((e) => {
    console.warn(`coi-serviceworker: not registered (${e && e.message}); the page runs on one thread`);
  });
}
