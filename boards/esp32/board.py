"""ESP32 board (ESP32-DevKitC with an ESP32-WROOM-32 or -WROVER module): the pin map and
the factories of the meter's peripherals. Nothing else: main.py composes them into the
firmware (boards/common/mcu.py, firmware/app.py). The wiring table is README.md.

Pins avoid the flash pins (GPIO 6-11), GPIO 16/17 (the PSRAM of WROVER modules) and the
strapping pins 0, 12 and 15; GPIO 34-39 are inputs only (fine for a receiver).
"""

from machine import RTC, SPI, UART, Pin, Timer

NAME = "esp32"
MPY_ARCH = "xtensawin"  # mpy-cross -march for viper/native modules (tools/deploy.py)

# -- optical port (IEC 62056-21 probe head: IR LED and phototransistor) on UART1
OPTICAL_UART = 1
OPTICAL_TX = 4  # IR LED driver
OPTICAL_RX = 36  # phototransistor (input-only pin)
OPTICAL_BAUD = 300  # the IEC 62056-21 sign-on rate, 7E1: firmware/optical.py switches it

# -- RS-485 on UART2 through a MAX3485 (3.3 V) transceiver, DE and /RE tied together
RS485_UART = 2
RS485_TX = 26  # -> DI
RS485_RX = 27  # <- RO
RS485_DE = 33  # -> DE + /RE (high: transmit)
RS485_BAUD = 9600

UART_RXBUF = 512  # bytes; the longest HDLC frame is under 160

# -- metering IC: ATM90E32AS on VSPI (SPI 2), mode 3, <= 1 MHz, chip select from a Pin
METER_CHIP = "atm90e32"
SPI_ID = 2
SPI_SCK = 18
SPI_MOSI = 23
SPI_MISO = 19
METER_CS = 5  # VSPI's usual CS; a strapping pin that must be high at boot: CS idles high
SPI_BAUD = 1000000
SPI_POLARITY = 1
SPI_PHASE = 1

STATUS_LED = 2  # the blue LED of most DevKit boards (to GND through a resistor)

# -- filesystem: littlefs mounted at "/" by the port; the meter's records under /data
FS_ROOT = "/"
STORE_ROOT = "/data"

WDT_MS = 8000  # watchdog timeout: the main loop feeds it every round (<= 20 ms + work)
MAINTENANCE_TIMER = 0  # hardware timer that feeds the watchdog after Ctrl-C on the console
HDLC_INFO_CAP = 128  # largest HDLC information field the meter accepts/negotiates


def optical_uart():
    return UART(OPTICAL_UART, baudrate=OPTICAL_BAUD, bits=7, parity=0, stop=1,
                tx=Pin(OPTICAL_TX), rx=Pin(OPTICAL_RX), timeout=0, rxbuf=UART_RXBUF)


def rs485():
    from rs485 import HalfDuplex  # firmware/rs485.py: DE high for exactly one frame

    uart = UART(RS485_UART, baudrate=RS485_BAUD, bits=8, parity=None, stop=1,
                tx=Pin(RS485_TX), rx=Pin(RS485_RX), timeout=0, rxbuf=UART_RXBUF)
    return HalfDuplex(uart, Pin(RS485_DE, Pin.OUT, value=0))


def meter_spi():
    return SPI(SPI_ID, baudrate=SPI_BAUD, polarity=SPI_POLARITY, phase=SPI_PHASE, bits=8,
               firstbit=SPI.MSB, sck=Pin(SPI_SCK), mosi=Pin(SPI_MOSI), miso=Pin(SPI_MISO))


def meter_cs():
    return Pin(METER_CS, Pin.OUT, value=1)


def status_led():
    return Pin(STATUS_LED, Pin.OUT, value=0)


def rtc():
    return RTC()


def maintenance_timer():
    return Timer(MAINTENANCE_TIMER)


def filesystem():
    """The directory of the meter's records (created on first boot)."""
    import os

    try:
        os.mkdir(STORE_ROOT)
    except OSError:
        pass  # exists
    return STORE_ROOT
