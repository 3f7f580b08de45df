#!/usr/bin/env node
// The root package's `herald` bin: the server package's CLI, built on demand.
import '../packages/server/bin/herald.js';
