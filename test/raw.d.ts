// Vite's client types: `?raw` imports and `import.meta.glob`, as the tests use them.
/// <reference types="vite/client" />
