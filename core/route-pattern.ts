// Moved to variants/router/shared/route-pattern.ts; kept until variants/router/find-my-way-compiled (being
// written in parallel) imports the new path.
export * from '../variants/router/shared/route-pattern.js';
