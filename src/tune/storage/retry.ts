/**
 * The retry policy moved to src/sql/retry.ts with the rest of the SQL layer; this name stays for the
 * dashboard server (src/track/server.ts), which another change is moving, and can go once it
 * imports from src/sql.
 */
export * from '../../sql/retry.js';
