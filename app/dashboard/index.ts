/**
 * The dashboard application: the HTTP server behind `tensile dashboard`, the data shapes its page
 * reads (also embedded by the static report), and `tensile report`'s self-contained HTML file. It
 * reads runs and studies only through the library's public surface.
 */
export {
  startDashboard,
  defaultDashboardDirectory,
  isLoopbackAddress,
  generateDashboardToken,
  checkDashboardToken,
  checkAllowedHost,
  pageSecurityPolicy,
  artifactSecurityPolicy,
  type DashboardOptions,
  type DashboardServer,
} from './server.js';
export * from './data.js';
export { buildReport, joinDashboardModules, dashboardModules, type ReportOptions } from './report.js';
