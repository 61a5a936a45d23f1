// zoo's browser page: exported TFLite files run with LiteRT.js on the visitor's device.
// /models.json (served by `zoo web`) says which fixed-batch files each export has and how
// every input of every signature must look; inputs are checked against it before a call,
// because TFLite files carry no checks of their own (a label out of range or NaN noise would
// otherwise be used silently).
import {Tensor, loadAndCompile, loadLiteRt} from '@litertjs/core';

const compiled = new Map();  // url → CompiledModel
let catalog = {};

// Inputs ---------------------------------------------------------------------------------
function validate(spec, name, value, batch, signature) {
  const where = `${signature}: input ${name}`;
  const want = spec.shape.map((d) => (d === 'N' ? batch : d));
  if (value.shape.length !== want.length || value.shape.some((d, i) => d !== want[i])) {
    throw new Error(`${where} must have shape [${want}], got [${value.shape}]`);
  }
  const size = want.reduce((a, b) => a * b, 1);
  if (value.data.length !== size) throw new Error(`${where} has ${value.data.length} values, not ${size}`);
  for (const v of value.data) {
    if (typeof v !== 'number' || Number.isNaN(v) || !Number.isFinite(v)) throw new Error(`${where} contains NaN or Inf`);
    if (spec.dtype === 'int32' && !Number.isInteger(v)) throw new Error(`${where} must be integers, got ${v}`);
    if (spec.minimum !== undefined && v < spec.minimum) throw new Error(`${where} must be in [${spec.minimum}, ${spec.maximum}], got ${v}`);
    if (spec.maximum !== undefined && v > spec.maximum) throw new Error(`${where} must be in [${spec.minimum}, ${spec.maximum}], got ${v}`);
    if (spec.values !== undefined && !spec.values.includes(v)) throw new Error(`${where} must be one of {${spec.values}}, got ${v}`);
  }
}

function fileFor(model, variant, batch) {
  const entry = Object.entries(catalog[model].files).find(([, f]) => f.variant === variant && f.batch === batch);
  if (!entry) throw new Error(`${model} has no ${variant} file of batch ${batch}`);
  return `/models/${model}/${entry[0]}`;
}

async function compiledModel(url) {
  if (!compiled.has(url)) compiled.set(url, await loadAndCompile(url, {accelerator: 'wasm'}));
  return compiled.get(url);
}

// One call: inputs {name: {data: [...], shape: [...]}} → {outputs: {name: {data, shape}}, ms}.
async function run(model, variant, batch, signature, inputs) {
  const specs = catalog[model].signatures[signature]?.inputs;
  if (!specs) throw new Error(`${model} has no TFLite signature ${signature}`);
  for (const [name, spec] of Object.entries(specs)) {
    if (!(name in inputs)) throw new Error(`${signature} needs input ${name}`);
    validate(spec, name, inputs[name], batch, signature);
  }
  const net = await compiledModel(fileFor(model, variant, batch));
  const tensors = {};
  for (const [name, spec] of Object.entries(specs)) {
    const array = spec.dtype === 'int32' ? Int32Array.from(inputs[name].data) : Float32Array.from(inputs[name].data);
    tensors[name] = new Tensor(array, inputs[name].shape);
  }
  const start = performance.now();
  const results = await net.run(signature, tensors);
  const ms = performance.now() - start;
  const outputs = {};
  for (const [name, tensor] of Object.entries(results)) {
    outputs[name] = {data: Array.from(tensor.toTypedArray()), shape: tensor.type?.layout?.dimensions ?? null};
    tensor.delete();
  }
  for (const t of Object.values(tensors)) t.delete();
  return {outputs, ms};
}

// Random inputs ------------------------------------------------------------------------------
let seed = 1;
function uniform() {  // mulberry32
  seed = (seed + 0x6D2B79F5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function normal() {
  return Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}
function inputsFor(model, signature, batch, labels) {
  const out = {};
  for (const [name, spec] of Object.entries(catalog[model].signatures[signature].inputs)) {
    const shape = spec.shape.map((d) => (d === 'N' ? batch : d));
    const size = shape.reduce((a, b) => a * b, 1);
    let data;
    if (spec.role === 'labels') data = labels;
    else if (spec.role === 'uniform_noise') data = Array.from({length: size}, uniform);
    else data = Array.from({length: size}, normal);
    out[name] = {data, shape};
  }
  return out;
}

// Drawing ------------------------------------------------------------------------------------
// caption: a word under the image (a figure of its own), where images side by side differ in kind
function draw(container, data, shape, index, scale = 3, caption = null) {
  const [h, w, c] = shape;
  const canvas = document.createElement('canvas');
  canvas.width = w; canvas.height = h;
  canvas.style.width = `${w * scale}px`; canvas.style.height = `${h * scale}px`;
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(w, h);
  const offset = index * h * w * c;
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) {
      const v = data[offset + p * c + (c === 3 ? k : 0)];
      image.data[p * 4 + k] = Math.max(0, Math.min(255, Math.round(v * 255)));
    }
    image.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  if (caption === null) {
    container.appendChild(canvas);
    return;
  }
  const figure = document.createElement('figure');
  const text = document.createElement('figcaption');
  text.textContent = caption;
  figure.append(canvas, text);
  container.appendChild(figure);
}

function sizeOf(info, variant) {
  return Object.values(info.files).find((f) => f.variant === variant && f.batch === 1)?.bytes ?? 0;
}

function section(model, title, explain) {
  const info = catalog[model];
  const el = document.createElement('section');
  el.id = `model-${model}`;
  const variants = [...new Set(Object.values(info.files).map((f) => f.variant))];
  const options = variants.map((v) =>
    `<option value="${v}" ${v === info.default_variant ? 'selected' : ''}>${v} (${(sizeOf(info, v) / 1e6).toFixed(1)} MB)</option>`,
  ).join('');
  // one variant (the exporter writes the browser copies of one): said, not a menu of one
  const chooser = variants.length > 1
    ? `<label>variant <select class="variant">${options}</select></label>`
    : `<small>${variants[0]} TFLite file (${(sizeOf(info, variants[0]) / 1e6).toFixed(1)} MB)</small>
       <input type="hidden" class="variant" value="${variants[0]}">`;
  el.innerHTML = `<h2>${title}</h2><p><small>${explain}</small></p>
    ${chooser}
    <div class="controls"></div><div class="output"></div><div class="status"></div>`;
  document.getElementById('models').appendChild(el);
  return el;
}

async function report(el, promise, what) {
  const status = el.querySelector('.status');
  status.classList.remove('error');
  status.textContent = `${what} …`;
  try {
    const {ms, variant} = await promise;
    status.textContent = `${what}: ${ms.toFixed(1)} ms on this device (LiteRT.js wasm, ${variant})`;
  } catch (e) {
    status.classList.add('error');
    status.textContent = `${what}: ${e.message}`;
  }
}

// The generate signatures of a model: the guided sampler, a diffusion model's DPM-Solver++(2M)
// and its few-step students.
function samplersOf(model) {
  const info = catalog[model];
  const steps = info.config.sample_steps;
  const out = [['generate', steps ? `${steps} guided DDIM steps` : 'one call']];
  const dpm = info.config.dpm_solver_steps;
  if (dpm) out.push(['generate_dpm_solver', `${dpm} guided DPM-Solver++(2M) steps`]);
  for (const n of info.config.students ?? []) out.push([`generate_${n}_steps`, `${n} steps (distilled student)`]);
  return out.filter(([signature]) => signature in info.signatures);
}

function generatorSection(model, conditional) {
  const info = catalog[model];
  const steps = info.config.sample_steps;
  const title = {cgan: 'Class-conditional GAN', diffusion: 'Diffusion'}[model] ?? `${model.toUpperCase()} samples`;
  const explain = conditional
    ? (steps ? `One call runs the whole DDIM loop (guidance ${info.config.guidance}) inside the file; DPM-Solver++(2M) takes fewer guided steps, the distilled students 4 or 2 steps of one network.` : 'One call of the generator.')
    : 'A code drawn from the Gaussian mixture over the training codes, decoded (one call).';
  const el = section(model, title, explain);
  const controls = el.querySelector('.controls');
  const output = el.querySelector('.output');
  const samplers = samplersOf(model);
  if (samplers.length > 1) {
    const label = document.createElement('label');
    label.innerHTML = `sampler <select class="sampler">${samplers.map(([s, text]) => `<option value="${s}">${text}</option>`).join('')}</select> `;
    controls.appendChild(label);
  }
  const signature = () => el.querySelector('.sampler')?.value ?? 'generate';
  const go = (batch, labels) => report(el, (async () => {
    const variant = el.querySelector('.variant').value;
    const chosen = signature();
    const {outputs, ms} = await run(model, variant, batch, chosen, inputsFor(model, chosen, batch, labels));
    output.innerHTML = '';
    for (let i = 0; i < batch; i++) draw(output, outputs.images.data, info.image_shape, i);
    return {ms, variant};
  })(), `${signature()}${batch === 1 ? '' : ` ${batch}`}`);
  if (conditional) {
    for (let d = 0; d < info.num_classes; d++) {
      const b = document.createElement('button');
      b.textContent = d; b.onclick = () => go(1, [d]);
      controls.appendChild(b);
    }
    const all = document.createElement('button');
    all.textContent = 'all ten'; all.onclick = () => go(10, [...Array(10).keys()]);
    controls.appendChild(all);
  } else {
    const one = document.createElement('button');
    one.textContent = 'draw a sample'; one.onclick = () => go(1, null);
    const ten = document.createElement('button');
    ten.textContent = 'draw ten'; ten.onclick = () => go(10, null);
    controls.append(one, ten);
  }
}

function denoiserSection(model, digits) {
  const info = catalog[model];
  const sigma = info.config.noise === 'gaussian' ? info.config.noise_level : 0.3;
  const el = section(model, 'Denoising autoencoder', `A test digit with Gaussian noise (σ = ${sigma}) added here, cleaned by one call.`);
  el.id = `model-${model}-denoiser`;  // the model's samples have a section of their own
  const button = document.createElement('button');
  button.textContent = 'denoise a noisy test digit';
  let next = 0;
  button.onclick = () => report(el, (async () => {
    const variant = el.querySelector('.variant').value;
    const clean = digits.images[next++ % digits.images.length];
    const noisy = clean.map((v) => Math.min(1, Math.max(0, v + sigma * normal())));
    const {outputs, ms} = await run(model, variant, 1, 'reconstruct', {images: {data: noisy, shape: [1, ...digits.shape]}});
    const output = el.querySelector('.output');
    output.innerHTML = '';
    for (const [image, caption] of [[noisy, 'noisy'], [outputs.images.data, 'denoised'], [clean, 'original']]) {
      draw(output, image, digits.shape, 0, 3, caption);
    }
    return {ms, variant};
  })(), 'reconstruct');
  el.querySelector('.controls').appendChild(button);
}

async function main() {
  const runtime = document.getElementById('runtime');
  try {
    await loadLiteRt('/litert/core/wasm/', {threads: self.crossOriginIsolated === true});
    catalog = await (await fetch('/models.json')).json();
    const digits = await (await fetch('/digits.json')).json();
    runtime.textContent = `LiteRT.js ready (wasm${self.crossOriginIsolated ? ', threads' : ''}); models: ${Object.keys(catalog).join(', ')}`;
    for (const [model, info] of Object.entries(catalog)) {
      const sigs = info.signatures;
      if (sigs.generate) generatorSection(model, Object.values(sigs.generate.inputs).some((s) => s.role === 'labels'));
      if (sigs.reconstruct && info.config.noise) denoiserSection(model, digits);
    }
    window.zoo.ready = true;
  } catch (e) {
    runtime.classList.add('error');
    runtime.textContent = `LiteRT.js could not start: ${e.message}`;
    window.zoo.error = e.message;
  }
}

window.zoo = {ready: false, run, catalog: () => catalog};
main();
