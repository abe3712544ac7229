#!/usr/bin/env node
// The one executable (bin/weft is a symlink to this file). Compiled code lives in dist/; see
// cmd/main.ts. Node resolves the symlink, so the main module has a .js name and loaders that
// a parent injects through NODE_OPTIONS (tap's, for one) can handle it.
import '../dist/cmd/main.js';
