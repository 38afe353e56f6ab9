export { runPlugin, startPlugin, stopOnSignals, service, type PluginSpec, type PluginContext, type PluginInstance, type RunningPlugin, type StartOptions, type ServiceRegistration } from './plugin.js';
export { parseFlags, usage, type PluginFlags } from './flags.js';
export { loadConfig, type PluginConfig } from './config.js';
export { createLogger, type Logger } from './logger.js';
export { HealthState } from './health.js';
