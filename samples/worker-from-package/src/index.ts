// The whole Worker: RAG Guard's proxy, configured by wrangler.toml and secrets.
export { default } from 'rag-guard/worker'
