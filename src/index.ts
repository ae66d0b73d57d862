// The package's public library entry (`import … from 'sluice'`): run the gateway, the doctor and
// the probe in-process, for example in an MCP server's own test suite. Everything not exported
// here is internal and may change in any release. docs/architecture.md describes the parts.
export { startGateway, type Gateway, type GatewayDeps } from './app.ts';
export { ConfigError, loadConfigFile, parseConfigText, quickConfig } from './config/load.ts';
export type { Config } from './config/schema.ts';
export { createLogger } from './observability/logger.ts';
export { runDoctor, DoctorFatal } from './doctor/run-doctor.ts';
export type { DoctorOptions } from './doctor/context.ts';
export {
  failed as doctorFailed,
  renderMarkdown as renderDoctorMarkdown,
  type CheckResult,
  type Report,
} from './doctor/report.ts';
export { startProbe, type Probe, type ProbeRecord } from './probe/probe-server.ts';
