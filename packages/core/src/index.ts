export { startDaemon, type Daemon } from './daemon.js';
export { defaultConfigToml, loadCoreConfig, parseConfig, type CoreConfig, type PluginConfig, type PluginKind } from './config.js';
export { Supervisor } from './supervisor.js';
export { PluginHost } from './plugin-host.js';
export { findExecutable } from './executables.js';
export { PluginEndpoint } from './endpoint.js';
