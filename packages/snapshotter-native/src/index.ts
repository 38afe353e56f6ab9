export { nativeBackend, nativeMounts } from './backend.js';
export { copyTree } from './copy.js';
export { nativePlugin } from './plugin.js';
