export { overlayBackend, overlayMounts, kernelHasOverlayIndex, type OverlayOptions } from './backend.js';
export { overlayPlugin } from './plugin.js';
