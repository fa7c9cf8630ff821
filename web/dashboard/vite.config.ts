import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The build is committed (internal/dashboard/dist) and checked against the
// sources in CI, so it must be byte-for-byte reproducible: content-hashed
// names, no source maps, no build time or absolute path in any output.
const target = process.env.ABACUS_URL ?? 'http://127.0.0.1:8080'

export default defineConfig({
  plugins: [vue()],
  base: '/',
  build: {
    outDir: '../../internal/dashboard/dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    reportCompressedSize: false,
    // The polyfill would be an inline script; the CSP allows none, and
    // every browser the dashboard supports has modulepreload.
    modulePreload: { polyfill: false },
    target: 'es2022',
    rollupOptions: {
      // Two pages: the staff dashboard and the customer portal (/portal),
      // which shares components and styles but loads none of the staff pages.
      input: { index: 'index.html', portal: 'portal.html' },
      output: {
        // Shared chunks are named after their first module; drop the
        // plugin's suffix so the names stay readable.
        chunkFileNames: (c) => `assets/${c.name.replace(/\.vue_vue_type.*$/, '')}-[hash].js`,
        // The small modules nearly every page uses travel together: on a
        // first load each separate file is one more request waiting for
        // one of the browser's six connections.
        manualChunks: (id) => (/\/src\/(components\/(DataState|ProblemMessage|FormField)\.vue|resource\.ts|format\.ts|list\.ts|url\.ts|action\.ts|fields\.ts)/.test(id) ? 'common' : undefined),
      },
    },
  },
  server: {
    // npm run dev: the API of a running abacus (ABACUS_URL) behind Vite.
    proxy: {
      '/api': { target, changeOrigin: false },
      '/oauth': { target, changeOrigin: false },
      '/.well-known': { target, changeOrigin: false },
    },
  },
})
