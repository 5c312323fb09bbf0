// Bundles the browser code and styles into dist/ with esbuild.
// Run through `npm run build` (the Makefile does it).
import * as esbuild from "esbuild";

const watch = process.argv.includes("--watch");
const options = {
  entryPoints: { app: "src/app.js", watch: "src/watch.js", dashboard: "src/dashboard.js", style: "src/style.css" },
  bundle: true,
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  target: ["es2020"],
  outdir: "dist",
  logLevel: "info",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
