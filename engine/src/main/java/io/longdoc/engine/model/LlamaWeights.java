package io.longdoc.engine.model;

/**
 * The tensors of a LLaMA-family model (LLaMA, Mistral, Index), checked against the config.
 * Model code reads these; how they are stored (mmap, dtype) stays inside {@link Tensor}.
 */
public final class LlamaWeights {
    public final ModelConfig config;
    public final Tensor embedding;      // (vocab, dim)
    public final Layer[] layers;
    public final float[] finalNorm;     // (dim)
    public final Tensor lmHead;         // (vocab, dim)
    /** Index's norm_head: logits[v] are scaled by 1/‖lm_head[v]‖ (the rows L2-normalised once at load); else null. */
    public final float[] lmHeadRowScale;

    public static final class Layer {
        public final float[] attnNorm, ffnNorm;  // (dim)
        public final Tensor wq;                   // (heads * headDim, dim)
        public final Tensor wk, wv;               // (kvHeads * headDim, dim)
        public final Tensor wo;                   // (dim, heads * headDim)
        public final Tensor gate, up;             // (hiddenDim, dim)
        public final Tensor down;                 // (dim, hiddenDim)

        Layer(Weights w, ModelConfig c, int i) {
            String p = "model.layers." + i + ".";
            attnNorm = w.get(p + "input_layernorm.weight").expect(c.dim()).toFloats();
            ffnNorm = w.get(p + "post_attention_layernorm.weight").expect(c.dim()).toFloats();
            wq = w.get(p + "self_attn.q_proj.weight").expect(c.qDim(), c.dim());
            wk = w.get(p + "self_attn.k_proj.weight").expect(c.kvDim(), c.dim());
            wv = w.get(p + "self_attn.v_proj.weight").expect(c.kvDim(), c.dim());
            wo = w.get(p + "self_attn.o_proj.weight").expect(c.dim(), c.qDim());
            gate = w.get(p + "mlp.gate_proj.weight").expect(c.hiddenDim(), c.dim());
            up = w.get(p + "mlp.up_proj.weight").expect(c.hiddenDim(), c.dim());
            down = w.get(p + "mlp.down_proj.weight").expect(c.dim(), c.hiddenDim());
        }
    }

    public LlamaWeights(ModelConfig c, Weights w) {
        this.config = c;
        embedding = w.get("model.embed_tokens.weight").expect(c.vocabSize(), c.dim());
        layers = new Layer[c.layers()];
        for (int i = 0; i < c.layers(); i++) {
            layers[i] = new Layer(w, c, i);
        }
        finalNorm = w.get("model.norm.weight").expect(c.dim()).toFloats();
        if (c.tiedEmbeddings()) {
            // Tied: the embedding is the head, as Hugging Face ties them and vLLM skips a stray
            // lm_head.weight that some tied checkpoints also carry.
            lmHead = embedding;
        } else if (w.has("lm_head.weight")) {
            lmHead = w.get("lm_head.weight").expect(c.vocabSize(), c.dim());
        } else {
            throw new ModelFormatException(w.source() + ": tensor lm_head.weight is missing (and tie_word_embeddings is false)");
        }
        lmHeadRowScale = c.normHead() ? rowInverseNorms(lmHead) : null;
    }

    /** 1 / max(‖row‖₂, 1e-12) for each row, as torch.nn.functional.normalize. */
    private static float[] rowInverseNorms(Tensor t) {
        float[] scale = new float[t.rows()];
        float[] row = new float[t.cols()];
        short[] scratch = new short[t.cols()];
        for (int r = 0; r < t.rows(); r++) {
            t.readRow(r, row, scratch);
            double sum = 0;
            for (float v : row) {
                sum += (double) v * v;
            }
            scale[r] = (float) (1.0 / Math.max(Math.sqrt(sum), 1e-12));
        }
        return scale;
    }
}
