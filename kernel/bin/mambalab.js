#!/usr/bin/env node
// The CLI entry point; the compiled CLI lives in dist/ (built by npm install).
import "../dist/cli/main.js";
