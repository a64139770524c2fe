package io.longdoc.udfs;

import io.longdoc.engine.runtime.EngineSettings;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/** The GPU a Spark task should use: the address Spark assigned to it (resource "gpu"), else the configured device. */
public final class TaskGpu {
    private TaskGpu() {
    }

    public static EngineSettings settingsForTask(EngineSettings settings) {
        // auto without a usable GPU runs on the CPU: the device must not split it into one engine per GPU address.
        if (settings.backend().equals("cpu") || (settings.backend().equals("auto") && io.longdoc.engine.cuda.CudaDevice.probe() != null)) {
            return settings;
        }
        TaskContext task = TaskContext.get();
        if (task == null) {
            return settings;
        }
        scala.Option<ResourceInformation> gpu = task.resources().get("gpu");
        if (gpu.isEmpty() || gpu.get().addresses().length == 0) {
            return settings;
        }
        String address = gpu.get().addresses()[0];
        try {
            return settings.withDevice(Integer.parseInt(address.trim()));
        } catch (NumberFormatException e) {
            throw new IllegalStateException("Spark assigned GPU address '" + address + "', which is not a CUDA device ordinal");
        }
    }
}
