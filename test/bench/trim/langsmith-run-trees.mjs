// Build-time stand-in for `langsmith/run_trees` (wrangler `alias`): what @langchain/core uses
// of it with tracing off — a RunTree that holds its fields and never posts, `isRunTree`, and
// `convertToDottedOrderFormat` (copied from langsmith 0.x lib/run_trees.mjs).
export class RunTree {
  constructor(config = {}) {
    Object.assign(this, {
      id: config.id ?? crypto.randomUUID(),
      run_type: 'chain',
      extra: {},
      tags: [],
      child_runs: [],
      start_time: Date.now(),
      ...config,
      tracingEnabled: false,
    })
  }

  createChild(config) {
    const child = new RunTree({ ...config, parent_run: this })
    this.child_runs.push(child)
    return child
  }

  async end(outputs, error, endTime = Date.now()) {
    this.outputs = outputs
    this.error = error
    this.end_time = endTime
  }

  async postRun() {}

  async patchRun() {}

  toJSON() {
    const { parent_run: _parent, child_runs: _children, ...fields } = this
    return fields
  }
}

export function isRunTree(x) {
  return x != null && typeof x.createChild === 'function' && typeof x.postRun === 'function'
}

function stripNonAlphanumeric(input) {
  return input.replace(/[-:.]/g, '')
}

export function convertToDottedOrderFormat(epoch, runId, executionOrder = 1) {
  const paddedOrder = executionOrder.toFixed(0).slice(0, 3).padStart(3, '0')
  const microsecondPrecisionDatestring = `${new Date(epoch).toISOString().slice(0, -1)}${paddedOrder}Z`
  return {
    dottedOrder: stripNonAlphanumeric(microsecondPrecisionDatestring) + runId,
    microsecondPrecisionDatestring,
  }
}
