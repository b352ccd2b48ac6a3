// Express 5 ships no type declarations and @types/express is not installed in this repository, so
// the example sees Express as untyped. Delete this file once @types/express is a devDependency.
declare module 'express';
