// @mambalab/contract: what the kernel and the lab extension agree on, imported by both.
export * from './schema.js';
export * from './ema.js';
export * from './format.js';
export * from './summary.js';
export * from './document.js';
export * from './balance.js';
