// The UI stack: Preact (a 4 kB React-compatible component library) with htm (JSX written as tagged
// templates), so these files run in the browser exactly as they are in the repository: no bundler, no
// build step, nothing fetched from a CDN. Herald serves both libraries from node_modules at /ui/vendor/,
// which is why `npm install && npm start` is enough, offline. Every page Herald serves (console, portal)
// imports its components from here.
import { h, render, Fragment, cloneElement, toChildArray } from '../vendor/preact.mjs';
import htm from '../vendor/htm.mjs';

export { h, render, Fragment, cloneElement, toChildArray };
export { useState, useEffect, useRef, useCallback, useMemo } from '../vendor/preact-hooks.mjs';
export const html = htm.bind(h);
