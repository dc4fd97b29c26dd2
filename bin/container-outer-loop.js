#!/usr/bin/env node
// The local pipeline runner (runner/cli.ts), run through tsx from the repository's dev dependencies.
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { pathToFileURL } = require('node:url');

// tsx resolved from this repository, so the runner works from any working directory.
const tsx = pathToFileURL(path.join(__dirname, '..', 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const result = spawnSync(process.execPath, ['--import', tsx, path.join(__dirname, '..', 'runner', 'cli.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
