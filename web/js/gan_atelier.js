// GAN Atelier: a new training node keeps its seed "fixed".
//
// ComfyUI's frontend gives every seed a control widget that it sets to "randomize" on a new
// node: right for generators, wrong for a trainer, whose every queue would then retrain from
// zero for minutes or hours instead of reusing the cached model. For the trainers (and the
// Example Dataset and Example Song that feed trainers and long renders) a freshly added node
// starts at "fixed"; a workflow loaded from a file keeps the value it was saved with (the
// frontend applies saved widget values after this hook), and the user can still pick
// increment or randomize.
import { app } from "../../../scripts/app.js";

const FIXED_SEED_NODES = new Set([
  "GANAtelierTrain",
  "GANAtelierTrainStyle",
  "GANAtelierTrainDenoiser",
  "GANAtelierExampleDataset",
  "GANAtelierExampleSong",
]);

app.registerExtension({
  name: "gan_atelier.fixed_training_seeds",
  nodeCreated(node) {
    if (!FIXED_SEED_NODES.has(node.comfyClass)) return;
    const seed = node.widgets?.find((w) => w.name === "seed");
    const linked = seed?.linkedWidgets ?? [];
    const control =
      linked.find((w) => Array.isArray(w.options?.values) && w.options.values.includes("fixed")) ??
      node.widgets?.find((w) => w.name === "control_after_generate");
    if (control) control.value = "fixed";
  },
});
